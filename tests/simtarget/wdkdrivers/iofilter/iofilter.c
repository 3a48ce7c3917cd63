/*
 * iofilter.sys - a legacy filter driver of its own image, written for the tests: it
 * first opens iostack.sys's \Device\IoStackKsim (loaded before it) with
 * IoGetDeviceObjectPointer and sends it one device control, then attaches over it by
 * name (IoAttachDevice) and passes every IRP down, device controls with a completion
 * routine that prints one "iofilter: ..." line; its unload detaches.
 */
#include <ntddk.h>

static UNICODE_STRING TargetName = RTL_CONSTANT_STRING(L"\\Device\\IoStackKsim");
static UNICODE_STRING MissingName = RTL_CONSTANT_STRING(L"\\Device\\NoSuchDeviceKsim");
static PDEVICE_OBJECT FilterDevice, Lower;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD FilterUnload;
DRIVER_DISPATCH FilterPass;
IO_COMPLETION_ROUTINE FilterDone;

NTSTATUS FilterDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    DbgPrint("iofilter: completion status=%08lx pending=%d device=%d location=%d of %d\n", Irp->IoStatus.Status,
             Irp->PendingReturned, DeviceObject == FilterDevice, Irp->CurrentLocation, Irp->StackCount);
    if (Irp->PendingReturned)
        IoMarkIrpPending(Irp);
    return STATUS_CONTINUE_COMPLETION;
}

NTSTATUS FilterPass(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    if (IoGetCurrentIrpStackLocation(Irp)->MajorFunction != IRP_MJ_DEVICE_CONTROL) {
        IoSkipCurrentIrpStackLocation(Irp);
        return IoCallDriver(Lower, Irp);
    }
    IoCopyCurrentIrpStackLocationToNext(Irp);
    IoSetCompletionRoutine(Irp, FilterDone, NULL, TRUE, TRUE, TRUE);
    return IoCallDriver(Lower, Irp);
}

VOID FilterUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    IoDetachDevice(Lower);
    IoDeleteDevice(FilterDevice);
    DbgPrint("iofilter: unload\n");
}

/* Talks to the device before attaching, as a client driver would: opened by name, one
 * device control built for it, then the file object released. */
static VOID AskTheDevice(VOID)
{
    PFILE_OBJECT file = NULL, none;
    PDEVICE_OBJECT top = NULL, nowhere;
    NTSTATUS status, missing;
    KEVENT event;
    IO_STATUS_BLOCK iosb;
    CHAR out[16];
    PIRP irp;
    LONG refs;

    missing = IoGetDeviceObjectPointer(&MissingName, FILE_READ_DATA, &none, &nowhere);
    status = IoGetDeviceObjectPointer(&TargetName, FILE_READ_DATA, &file, &top);
    if (!NT_SUCCESS(status)) {
        DbgPrint("iofilter: open failed %08lx\n", status);
        return;
    }
    refs = file->DeviceObject->ReferenceCount;
    KeInitializeEvent(&event, NotificationEvent, FALSE);
    RtlZeroMemory(out, sizeof(out));
    irp = IoBuildDeviceIoControlRequest(CTL_CODE(40003, 0x900, METHOD_BUFFERED, FILE_ANY_ACCESS), top, NULL, 0,
                                        out, sizeof(out), FALSE, &event, &iosb);
    status = irp ? IoCallDriver(top, irp) : STATUS_INSUFFICIENT_RESOURCES;
    DbgPrint("iofilter: opened missing=%08lx type=%d top_is_stack_top=%d refs=%ld asked=%08lx,%s\n", missing,
             file->Type, top->AttachedDevice == NULL && top != file->DeviceObject, refs, status, out);
    top = file->DeviceObject;
    ObDereferenceObject(file);
    DbgPrint("iofilter: released refs=%ld\n", top->ReferenceCount);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT none;
    NTSTATUS status, missing;
    ULONG i;
    UNREFERENCED_PARAMETER(RegistryPath);

    AskTheDevice();
    status = IoCreateDevice(DriverObject, 0, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &FilterDevice);
    if (!NT_SUCCESS(status))
        return status;
    missing = IoAttachDevice(FilterDevice, &MissingName, &none);
    status = IoAttachDevice(FilterDevice, &TargetName, &Lower);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(FilterDevice);
        return status;
    }
    FilterDevice->Flags |= Lower->Flags & (DO_BUFFERED_IO | DO_DIRECT_IO);
    FilterDevice->Flags &= ~DO_DEVICE_INITIALIZING;
    for (i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        DriverObject->MajorFunction[i] = FilterPass;
    DriverObject->DriverUnload = FilterUnload;
    DbgPrint("iofilter: attached missing=%08lx none=%d stack=%d\n", missing, none == NULL, FilterDevice->StackSize);
    return STATUS_SUCCESS;
}
