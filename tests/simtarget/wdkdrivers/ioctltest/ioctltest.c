/*
 * ioctltest.sys - a WDM driver in the manner of the WDK's sioctl sample, written for
 * the tests: a named device with a DOS name, create/close/cleanup, device controls in
 * each transfer method, buffered reads and writes, user buffers probed inside
 * __try/__except and locked through MDLs.  Every request prints one "ioctl:" line.
 */
#include <ntddk.h>

#define IOCTL_TEST_TYPE 40000
#define IOCTL_TEST_IN_DIRECT  CTL_CODE(IOCTL_TEST_TYPE, 0x900, METHOD_IN_DIRECT, FILE_ANY_ACCESS)
#define IOCTL_TEST_OUT_DIRECT CTL_CODE(IOCTL_TEST_TYPE, 0x901, METHOD_OUT_DIRECT, FILE_ANY_ACCESS)
#define IOCTL_TEST_BUFFERED   CTL_CODE(IOCTL_TEST_TYPE, 0x902, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_TEST_NEITHER    CTL_CODE(IOCTL_TEST_TYPE, 0x903, METHOD_NEITHER, FILE_ANY_ACCESS)
#define TEST_TAG 'tcoI'

static const char Reply[] = "reply from the driver";
static UNICODE_STRING DeviceName = RTL_CONSTANT_STRING(L"\\Device\\IoctlTestKsim");
static UNICODE_STRING DosName = RTL_CONSTANT_STRING(L"\\DosDevices\\IoctlTestKsim");
static CHAR Stored[64];
static ULONG StoredLength;
volatile LONG OpenCount;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD TestUnload;
_Dispatch_type_(IRP_MJ_CREATE) _Dispatch_type_(IRP_MJ_CLOSE) _Dispatch_type_(IRP_MJ_CLEANUP)
DRIVER_DISPATCH TestCreateClose;
_Dispatch_type_(IRP_MJ_DEVICE_CONTROL) DRIVER_DISPATCH TestDeviceControl;
_Dispatch_type_(IRP_MJ_READ) _Dispatch_type_(IRP_MJ_WRITE) DRIVER_DISPATCH TestReadWrite;

static NTSTATUS Complete(PIRP Irp, NTSTATUS Status, ULONG_PTR Information)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = Information;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

NTSTATUS TestCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    UNREFERENCED_PARAMETER(DeviceObject);
    if (sp->MajorFunction == IRP_MJ_CREATE)
        InterlockedIncrement(&OpenCount);
    else if (sp->MajorFunction == IRP_MJ_CLOSE)
        InterlockedDecrement(&OpenCount);
    DbgPrint("ioctl: major %u open=%ld mode=%u file=%u\n", (unsigned)sp->MajorFunction, OpenCount,
             (unsigned)Irp->RequestorMode, sp->FileObject != NULL);
    return Complete(Irp, STATUS_SUCCESS, 0);
}

static ULONG Copy(PVOID To, ULONG Room)
{
    ULONG n = Room < sizeof(Reply) ? Room : sizeof(Reply);
    RtlCopyMemory(To, Reply, n);
    return n;
}

NTSTATUS TestDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG in = sp->Parameters.DeviceIoControl.InputBufferLength;
    ULONG out = sp->Parameters.DeviceIoControl.OutputBufferLength;
    PCHAR buffer;
    ULONG_PTR information = 0;
    NTSTATUS status = STATUS_SUCCESS;
    PMDL mdl;
    UNREFERENCED_PARAMETER(DeviceObject);
    PAGED_CODE();

    switch (sp->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_TEST_BUFFERED:
        buffer = Irp->AssociatedIrp.SystemBuffer;
        DbgPrint("ioctl: buffered in=%lu \"%s\"\n", in, in ? buffer : "");
        information = Copy(buffer, out);
        break;
    case IOCTL_TEST_IN_DIRECT:
    case IOCTL_TEST_OUT_DIRECT:
        buffer = MmGetSystemAddressForMdlSafe(Irp->MdlAddress, NormalPagePriority | MdlMappingNoExecute);
        if (!buffer) {
            status = STATUS_INSUFFICIENT_RESOURCES;
            break;
        }
        DbgPrint("ioctl: direct in=\"%s\" mdl=%lu\n", (PCHAR)Irp->AssociatedIrp.SystemBuffer,
                 MmGetMdlByteCount(Irp->MdlAddress));
        information = Copy(buffer, out);
        break;
    case IOCTL_TEST_NEITHER:
        buffer = sp->Parameters.DeviceIoControl.Type3InputBuffer;
        try {
            ProbeForRead(buffer, in, sizeof(UCHAR));
            DbgPrint("ioctl: neither in=\"%s\"\n", buffer);
            ProbeForWrite(Irp->UserBuffer, out, sizeof(UCHAR));
        } except (EXCEPTION_EXECUTE_HANDLER) {
            status = GetExceptionCode();
            DbgPrint("ioctl: neither probe failed %08lx\n", (ULONG)status);
            break;
        }
        mdl = IoAllocateMdl(Irp->UserBuffer, out, FALSE, TRUE, NULL);
        if (!mdl) {
            status = STATUS_INSUFFICIENT_RESOURCES;
            break;
        }
        try {
            MmProbeAndLockPages(mdl, UserMode, IoWriteAccess);
        } except (EXCEPTION_EXECUTE_HANDLER) {
            status = GetExceptionCode();
            IoFreeMdl(mdl);
            break;
        }
        buffer = MmGetSystemAddressForMdlSafe(mdl, NormalPagePriority | MdlMappingNoExecute);
        information = buffer ? Copy(buffer, out) : 0;
        MmUnlockPages(mdl);
        IoFreeMdl(mdl);
        break;
    default:
        /* Quietly: the simulated kernel's system loop ticks every device with 0x222000. */
        status = STATUS_INVALID_DEVICE_REQUEST;
        break;
    }
    return Complete(Irp, status, information);
}

NTSTATUS TestReadWrite(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG n;
    UNREFERENCED_PARAMETER(DeviceObject);
    if (sp->MajorFunction == IRP_MJ_WRITE) {
        n = min(sp->Parameters.Write.Length, (ULONG)sizeof(Stored));
        RtlCopyMemory(Stored, Irp->AssociatedIrp.SystemBuffer, n);
        StoredLength = n;
        DbgPrint("ioctl: write %lu\n", n);
    } else {
        n = min(sp->Parameters.Read.Length, StoredLength);
        RtlCopyMemory(Irp->AssociatedIrp.SystemBuffer, Stored, n);
        DbgPrint("ioctl: read %lu\n", n);
    }
    return Complete(Irp, STATUS_SUCCESS, n);
}

VOID TestUnload(PDRIVER_OBJECT DriverObject)
{
    IoDeleteSymbolicLink(&DosName);
    IoDeleteDevice(DriverObject->DeviceObject);
    DbgPrint("ioctl: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT device;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(RegistryPath);

    status = IoCreateDevice(DriverObject, 0, &DeviceName, FILE_DEVICE_UNKNOWN, FILE_DEVICE_SECURE_OPEN,
                            FALSE, &device);
    if (!NT_SUCCESS(status))
        return status;
    device->Flags |= DO_BUFFERED_IO;
    DriverObject->MajorFunction[IRP_MJ_CREATE] = TestCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = TestCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLEANUP] = TestCreateClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = TestDeviceControl;
    DriverObject->MajorFunction[IRP_MJ_READ] = TestReadWrite;
    DriverObject->MajorFunction[IRP_MJ_WRITE] = TestReadWrite;
    DriverObject->DriverUnload = TestUnload;
    status = IoCreateSymbolicLink(&DosName, &DeviceName);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(device);
        return status;
    }
    DbgPrint("ioctl: loaded\n");
    return STATUS_SUCCESS;
}
