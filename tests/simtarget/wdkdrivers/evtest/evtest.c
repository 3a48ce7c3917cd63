/*
 * evtest.sys - a user program's event, signalled by the driver: the program passes
 * its event handle in the input of IOCTL_EVTEST_REGISTER ({ handle, delay in ms }); the
 * driver takes the event with ObReferenceObjectByHandle(EVENT_MODIFY_STATE,
 * *ExEventObjectType, UserMode), then sets it at once (delay 0) or from a timer DPC.
 * IOCTL_EVTEST_HANDLES makes a key handle with and without OBJ_KERNEL_HANDLE in the
 * caller's context and tries the kernel one as a user-mode caller.  Each request
 * prints one "evt:" line.
 */
#include <ntddk.h>

#define IOCTL_EVTEST_REGISTER CTL_CODE(0x8000, 0x900, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_EVTEST_HANDLES  CTL_CODE(0x8000, 0x901, METHOD_BUFFERED, FILE_ANY_ACCESS)

typedef struct _EVTEST_REGISTER {
    HANDLE Event;
    LONG DelayMs;
    LONG Reserved;
} EVTEST_REGISTER;

typedef struct _EVTEST_EXTENSION {
    KTIMER Timer;
    KDPC Dpc;
    PKEVENT Pending;
} EVTEST_EXTENSION;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD EvUnload;
_Dispatch_type_(IRP_MJ_CREATE) _Dispatch_type_(IRP_MJ_CLOSE) DRIVER_DISPATCH EvCreateClose;
_Dispatch_type_(IRP_MJ_DEVICE_CONTROL) DRIVER_DISPATCH EvControl;
KDEFERRED_ROUTINE EvTimerDpc;

VOID EvTimerDpc(PKDPC Dpc, PVOID Context, PVOID Arg1, PVOID Arg2)
{
    EVTEST_EXTENSION *ext = Context;
    PKEVENT event = ext->Pending;
    UNREFERENCED_PARAMETER(Dpc);
    UNREFERENCED_PARAMETER(Arg1);
    UNREFERENCED_PARAMETER(Arg2);
    ext->Pending = NULL;
    if (event) {
        KeSetEvent(event, IO_NO_INCREMENT, FALSE);
        ObDereferenceObject(event);
    }
}

NTSTATUS EvCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    Irp->IoStatus.Status = STATUS_SUCCESS;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_SUCCESS;
}

static NTSTATUS Register(EVTEST_EXTENSION *Ext, PIRP Irp, ULONG InputLength)
{
    EVTEST_REGISTER *in = Irp->AssociatedIrp.SystemBuffer;
    PKEVENT event = NULL;
    NTSTATUS status;
    LARGE_INTEGER due;

    if (InputLength < sizeof(*in))
        return STATUS_INVALID_PARAMETER;
    status = ObReferenceObjectByHandle(in->Event, EVENT_MODIFY_STATE, *ExEventObjectType, Irp->RequestorMode,
                                       (PVOID *)&event, NULL);
    DbgPrint("evt: register status=%x pid=%u mode=%u delay=%d\n", status,
             (ULONG)(ULONG_PTR)PsGetCurrentProcessId(), Irp->RequestorMode, in->DelayMs);
    if (!NT_SUCCESS(status))
        return status;
    if (in->DelayMs <= 0 || Ext->Pending) {
        KeSetEvent(event, IO_NO_INCREMENT, FALSE);
        ObDereferenceObject(event);
        return STATUS_SUCCESS;
    }
    Ext->Pending = event;
    due.QuadPart = -10000LL * in->DelayMs;
    KeSetTimer(&Ext->Timer, due, &Ext->Dpc);
    return STATUS_SUCCESS;
}

static NTSTATUS Handles(VOID)
{
    UNICODE_STRING name = RTL_CONSTANT_STRING(L"\\Registry\\Machine\\Software\\EvTest");
    OBJECT_ATTRIBUTES user, kernel;
    HANDLE uh = NULL, kh = NULL;
    NTSTATUS us, ks, asuser, askernel, closed, closed2;
    PVOID object = NULL;

    InitializeObjectAttributes(&user, &name, OBJ_CASE_INSENSITIVE, NULL, NULL);
    InitializeObjectAttributes(&kernel, &name, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    us = ZwOpenKey(&uh, KEY_READ, &user);
    ks = ZwOpenKey(&kh, KEY_READ, &kernel);
    asuser = ObReferenceObjectByHandle(kh, KEY_READ, NULL, UserMode, &object, NULL);
    askernel = ObReferenceObjectByHandle(kh, KEY_READ, NULL, KernelMode, &object, NULL);
    if (NT_SUCCESS(askernel))
        ObDereferenceObject(object);
    closed = ZwClose(uh);
    closed2 = ZwClose(kh);
    DbgPrint("evt: handles open=%x,%x user_kernel_bit=%u kernel_kernel_bit=%u kernel_as_user=%x "
             "kernel_as_kernel=%x close=%x,%x\n", us, ks, ((ULONG_PTR)uh & 0x80000000) != 0,
             ((ULONG_PTR)kh & 0x80000000) != 0, asuser, askernel, closed, closed2);
    return STATUS_SUCCESS;
}

NTSTATUS EvControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    NTSTATUS status;

    switch (sp->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_EVTEST_REGISTER:
        status = Register(DeviceObject->DeviceExtension, Irp, sp->Parameters.DeviceIoControl.InputBufferLength);
        break;
    case IOCTL_EVTEST_HANDLES:
        status = Handles();
        break;
    default:
        status = STATUS_INVALID_DEVICE_REQUEST;
        break;
    }
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

VOID EvUnload(PDRIVER_OBJECT DriverObject)
{
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\KsimEvTest");
    EVTEST_EXTENSION *ext = DriverObject->DeviceObject->DeviceExtension;
    if (KeCancelTimer(&ext->Timer) && ext->Pending)
        ObDereferenceObject(ext->Pending);
    IoDeleteSymbolicLink(&link);
    IoDeleteDevice(DriverObject->DeviceObject);
    DbgPrint("evt: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNICODE_STRING device = RTL_CONSTANT_STRING(L"\\Device\\KsimEvTest");
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\KsimEvTest");
    PDEVICE_OBJECT dev;
    EVTEST_EXTENSION *ext;
    NTSTATUS status;

    UNREFERENCED_PARAMETER(RegistryPath);
    status = IoCreateDevice(DriverObject, sizeof(EVTEST_EXTENSION), &device, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev);
    if (!NT_SUCCESS(status))
        return status;
    ext = dev->DeviceExtension;
    RtlZeroMemory(ext, sizeof(*ext));
    KeInitializeTimer(&ext->Timer);
    KeInitializeDpc(&ext->Dpc, EvTimerDpc, ext);
    status = IoCreateSymbolicLink(&link, &device);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(dev);
        return status;
    }
    DriverObject->MajorFunction[IRP_MJ_CREATE] = EvCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = EvCreateClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = EvControl;
    DriverObject->DriverUnload = EvUnload;
    DbgPrint("evt: loaded\n");
    return STATUS_SUCCESS;
}
