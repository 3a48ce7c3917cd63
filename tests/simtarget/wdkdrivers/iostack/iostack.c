/*
 * iostack.sys - a filter device over a function device, as a WDM filter driver and
 * the driver under it would be, written for the tests (one image holds both drivers'
 * code; each device's dispatch is chosen by its extension, and every IRP crosses from
 * one to the other through IoCallDriver as between two drivers).
 *
 * The filter attaches with IoAttachDeviceToDeviceStack and passes each device control
 * down with a completion routine; the function device completes at once, fails, or
 * leaves the IRP pending and completes it from a timer DPC.  A user program opening
 * \\.\IoStackKsim reaches the filter first.  IOCTL_IOSTACK_CASES makes the filter
 * build IRPs of its own (IoBuildDeviceIoControlRequest, IoBuildSynchronousFsdRequest)
 * and print what came back.  Every step prints one "iostack: ..." line.
 */
#include <ntddk.h>

#define IOSTACK_TYPE 40003
#define IOCTL_IOSTACK(n) CTL_CODE(IOSTACK_TYPE, (n), METHOD_BUFFERED, FILE_ANY_ACCESS)
#define FN_OK           0x900    /* routine on success/error/cancel; the function succeeds */
#define FN_FAIL         0x901    /* the same routine; the function fails */
#define FN_PENDING      0x902    /* the same routine; the function completes from a DPC */
#define FN_SYNC         0x903    /* the filter waits for the IRP back and completes it again */
#define FN_EX_ERROR_OK  0x904    /* IoSetCompletionRoutineEx on error only; the function succeeds */
#define FN_EX_ERROR_BAD 0x905    /* the same; the function fails */
#define FN_SKIP         0x906    /* the filter skips its location: no routine */
#define FN_SUCCESS_BAD  0x907    /* routine on success only; the function fails */
#define FN_CASES        0x910    /* the filter's own IRPs */
#define STATUS_FUNCTION_FAILS STATUS_DEVICE_NOT_READY

typedef struct _STACK_EXTENSION {
    BOOLEAN Filter;
    PDEVICE_OBJECT Lower;
    KTIMER Timer;
    KDPC Dpc;
    PIRP Held;
} STACK_EXTENSION, *PSTACK_EXTENSION;

static UNICODE_STRING DeviceName = RTL_CONSTANT_STRING(L"\\Device\\IoStackKsim");
static UNICODE_STRING DosName = RTL_CONSTANT_STRING(L"\\DosDevices\\IoStackKsim");
static PDEVICE_OBJECT FunctionDevice, FilterDevice;
static const CHAR FunctionReply[] = "function";

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD StackUnload;
DRIVER_DISPATCH StackDispatch;
IO_COMPLETION_ROUTINE FilterDone;
IO_COMPLETION_ROUTINE FilterSyncDone;
KDEFERRED_ROUTINE FunctionLater;

static NTSTATUS Complete(PIRP Irp, NTSTATUS Status, ULONG_PTR Information)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = Information;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

static ULONG Function(ULONG Code) { return (Code >> 2) & 0xFFF; }

/* ---- The function device ---- */

VOID FunctionLater(PKDPC Dpc, PVOID Context, PVOID Argument1, PVOID Argument2)
{
    PSTACK_EXTENSION ext = Context;
    PIRP irp = ext->Held;
    UNREFERENCED_PARAMETER(Dpc);
    UNREFERENCED_PARAMETER(Argument1);
    UNREFERENCED_PARAMETER(Argument2);
    ext->Held = NULL;
    RtlCopyMemory(irp->AssociatedIrp.SystemBuffer, FunctionReply, sizeof(FunctionReply));
    DbgPrint("iostack: function completes the pending IRP at irql %u\n", (unsigned)KeGetCurrentIrql());
    Complete(irp, STATUS_SUCCESS, sizeof(FunctionReply));
}

static NTSTATUS FunctionDispatch(PSTACK_EXTENSION Ext, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG fn;
    LARGE_INTEGER due;

    if (sp->MajorFunction == IRP_MJ_READ) {
        PCHAR buffer = Irp->AssociatedIrp.SystemBuffer;
        ULONG offset = (ULONG)sp->Parameters.Read.ByteOffset.QuadPart;
        if (sp->Parameters.Read.Length < 12)
            return Complete(Irp, STATUS_BUFFER_TOO_SMALL, 0);
        RtlCopyMemory(buffer, "read at 0x00", 13);
        buffer[10] = "0123456789abcdef"[(offset >> 4) & 15];
        buffer[11] = "0123456789abcdef"[offset & 15];
        return Complete(Irp, STATUS_SUCCESS, 13);
    }
    if (sp->MajorFunction != IRP_MJ_DEVICE_CONTROL)
        return Complete(Irp, STATUS_SUCCESS, 0);
    fn = Function(sp->Parameters.DeviceIoControl.IoControlCode);
    DbgPrint("iostack: function 0x%x at location %d of %d\n", fn, Irp->CurrentLocation, Irp->StackCount);
    switch (fn) {
    case FN_FAIL: case FN_EX_ERROR_BAD: case FN_SUCCESS_BAD:
        return Complete(Irp, STATUS_FUNCTION_FAILS, 0);
    case FN_PENDING:
        IoMarkIrpPending(Irp);
        Ext->Held = Irp;
        due.QuadPart = -10000;
        KeSetTimer(&Ext->Timer, due, &Ext->Dpc);
        return STATUS_PENDING;
    default:
        if (sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(FunctionReply))
            return Complete(Irp, STATUS_BUFFER_TOO_SMALL, 0);
        RtlCopyMemory(Irp->AssociatedIrp.SystemBuffer, FunctionReply, sizeof(FunctionReply));
        return Complete(Irp, STATUS_SUCCESS, sizeof(FunctionReply));
    }
}

/* ---- The filter device ---- */

NTSTATUS FilterDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    DbgPrint("iostack: filter completion 0x%x status=%08lx pending=%d device=%d irql=%u\n",
             (ULONG)(ULONG_PTR)Context, Irp->IoStatus.Status, Irp->PendingReturned,
             DeviceObject == FilterDevice, (unsigned)KeGetCurrentIrql());
    if (Irp->PendingReturned)
        IoMarkIrpPending(Irp);
    return STATUS_CONTINUE_COMPLETION;
}

NTSTATUS FilterSyncDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    UNREFERENCED_PARAMETER(Irp);
    KeSetEvent((PKEVENT)Context, IO_NO_INCREMENT, FALSE);
    return STATUS_MORE_PROCESSING_REQUIRED;
}

static NTSTATUS FilterSync(PSTACK_EXTENSION Ext, PIRP Irp)
{
    KEVENT event;
    NTSTATUS status;
    PCHAR buffer = Irp->AssociatedIrp.SystemBuffer;

    KeInitializeEvent(&event, NotificationEvent, FALSE);
    IoCopyCurrentIrpStackLocationToNext(Irp);
    IoSetCompletionRoutine(Irp, FilterSyncDone, &event, TRUE, TRUE, TRUE);
    status = IoCallDriver(Ext->Lower, Irp);
    if (status == STATUS_PENDING)
        KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    DbgPrint("iostack: filter has the IRP back status=%08lx info=%lu back_at_own_location=%d\n",
             Irp->IoStatus.Status, (ULONG)Irp->IoStatus.Information,
             IoGetCurrentIrpStackLocation(Irp)->DeviceObject == FilterDevice);
    if (NT_SUCCESS(Irp->IoStatus.Status) && Irp->IoStatus.Information == sizeof(FunctionReply)) {
        RtlCopyMemory(buffer + sizeof(FunctionReply) - 1, "+filter", 8);
        Irp->IoStatus.Information += 7;
    }
    status = Irp->IoStatus.Status;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

static VOID FilterCases(VOID)
{
    KEVENT event;
    IO_STATUS_BLOCK iosb;
    CHAR out[32];
    PDEVICE_OBJECT top;
    PIRP irp;
    NTSTATUS status;
    LONG refs;
    LARGE_INTEGER offset;

    top = IoGetAttachedDeviceReference(FunctionDevice);
    refs = top->ReferenceCount;
    DbgPrint("iostack: stack top_is_filter=%d attached=%d sizes=%d,%d refs=%ld\n", top == FilterDevice,
             FunctionDevice->AttachedDevice == FilterDevice, FunctionDevice->StackSize, FilterDevice->StackSize,
             refs);

    KeInitializeEvent(&event, NotificationEvent, FALSE);
    RtlZeroMemory(out, sizeof(out));
    irp = IoBuildDeviceIoControlRequest(IOCTL_IOSTACK(FN_OK), top, "in", 3, out, sizeof(out), FALSE, &event, &iosb);
    status = irp ? IoCallDriver(top, irp) : STATUS_INSUFFICIENT_RESOURCES;
    DbgPrint("iostack: built ioctl status=%08lx iosb=%08lx,%lu out=%s event=%ld\n", status, iosb.Status,
             (ULONG)iosb.Information, out, KeReadStateEvent(&event));

    KeInitializeEvent(&event, NotificationEvent, FALSE);
    RtlZeroMemory(out, sizeof(out));
    irp = IoBuildDeviceIoControlRequest(IOCTL_IOSTACK(FN_PENDING), top, NULL, 0, out, sizeof(out), FALSE, &event,
                                        &iosb);
    status = irp ? IoCallDriver(top, irp) : STATUS_INSUFFICIENT_RESOURCES;
    if (status == STATUS_PENDING)
        KeWaitForSingleObject(&event, Executive, KernelMode, FALSE, NULL);
    DbgPrint("iostack: built pending status=%08lx iosb=%08lx,%lu out=%s\n", status, iosb.Status,
             (ULONG)iosb.Information, out);
    ObDereferenceObject(top);

    KeInitializeEvent(&event, NotificationEvent, FALSE);
    RtlZeroMemory(out, sizeof(out));
    offset.QuadPart = 0x4c;
    irp = IoBuildSynchronousFsdRequest(IRP_MJ_READ, FunctionDevice, out, 16, &offset, &event, &iosb);
    status = irp ? IoCallDriver(FunctionDevice, irp) : STATUS_INSUFFICIENT_RESOURCES;
    DbgPrint("iostack: built read status=%08lx iosb=%08lx,%lu out=%s refs=%ld\n", status, iosb.Status,
             (ULONG)iosb.Information, out, FilterDevice->ReferenceCount);
}

static NTSTATUS FilterDispatch(PSTACK_EXTENSION Ext, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG fn;

    if (sp->MajorFunction != IRP_MJ_DEVICE_CONTROL) {
        IoSkipCurrentIrpStackLocation(Irp);
        return IoCallDriver(Ext->Lower, Irp);
    }
    fn = Function(sp->Parameters.DeviceIoControl.IoControlCode);
    switch (fn) {
    case FN_CASES:
        FilterCases();
        return Complete(Irp, STATUS_SUCCESS, 0);
    case FN_SYNC:
        return FilterSync(Ext, Irp);
    case FN_SKIP:
        IoSkipCurrentIrpStackLocation(Irp);
        return IoCallDriver(Ext->Lower, Irp);
    case FN_EX_ERROR_OK: case FN_EX_ERROR_BAD: {
        NTSTATUS status;
        IoCopyCurrentIrpStackLocationToNext(Irp);
        status = IoSetCompletionRoutineEx(FilterDevice, Irp, FilterDone, (PVOID)(ULONG_PTR)fn, FALSE, TRUE, FALSE);
        if (!NT_SUCCESS(status))
            return Complete(Irp, status, 0);
        return IoCallDriver(Ext->Lower, Irp);
    }
    case FN_SUCCESS_BAD:
        IoCopyCurrentIrpStackLocationToNext(Irp);
        IoSetCompletionRoutine(Irp, FilterDone, (PVOID)(ULONG_PTR)fn, TRUE, FALSE, FALSE);
        return IoCallDriver(Ext->Lower, Irp);
    default:
        IoCopyCurrentIrpStackLocationToNext(Irp);
        IoSetCompletionRoutine(Irp, FilterDone, (PVOID)(ULONG_PTR)fn, TRUE, TRUE, TRUE);
        return IoCallDriver(Ext->Lower, Irp);
    }
}

NTSTATUS StackDispatch(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PSTACK_EXTENSION ext = DeviceObject->DeviceExtension;
    return ext->Filter ? FilterDispatch(ext, Irp) : FunctionDispatch(ext, Irp);
}

VOID StackUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    IoDetachDevice(FunctionDevice);
    DbgPrint("iostack: unload detached=%d\n", FunctionDevice->AttachedDevice == NULL);
    IoDeleteDevice(FilterDevice);
    IoDeleteSymbolicLink(&DosName);
    IoDeleteDevice(FunctionDevice);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PSTACK_EXTENSION ext;
    PDEVICE_OBJECT lower;
    NTSTATUS status;
    ULONG i;
    UNREFERENCED_PARAMETER(RegistryPath);

    status = IoCreateDevice(DriverObject, sizeof(STACK_EXTENSION), &DeviceName, FILE_DEVICE_UNKNOWN, 0, FALSE,
                            &FunctionDevice);
    if (!NT_SUCCESS(status))
        return status;
    FunctionDevice->Flags |= DO_BUFFERED_IO;
    ext = FunctionDevice->DeviceExtension;
    RtlZeroMemory(ext, sizeof(*ext));
    KeInitializeTimer(&ext->Timer);
    KeInitializeDpc(&ext->Dpc, FunctionLater, ext);

    status = IoCreateDevice(DriverObject, sizeof(STACK_EXTENSION), NULL, FILE_DEVICE_UNKNOWN, 0, FALSE,
                            &FilterDevice);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(FunctionDevice);
        return status;
    }
    ext = FilterDevice->DeviceExtension;
    RtlZeroMemory(ext, sizeof(*ext));
    ext->Filter = TRUE;
    lower = IoAttachDeviceToDeviceStack(FilterDevice, FunctionDevice);
    ext->Lower = lower;
    FilterDevice->Flags |= lower->Flags & (DO_BUFFERED_IO | DO_DIRECT_IO);
    FilterDevice->Flags &= ~DO_DEVICE_INITIALIZING;
    FunctionDevice->Flags &= ~DO_DEVICE_INITIALIZING;

    for (i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        DriverObject->MajorFunction[i] = StackDispatch;
    DriverObject->DriverUnload = StackUnload;
    status = IoCreateSymbolicLink(&DosName, &DeviceName);
    if (!NT_SUCCESS(status)) {
        IoDetachDevice(FunctionDevice);
        IoDeleteDevice(FilterDevice);
        IoDeleteDevice(FunctionDevice);
        return status;
    }
    DbgPrint("iostack: loaded lower_is_function=%d\n", lower == FunctionDevice);
    return STATUS_SUCCESS;
}
