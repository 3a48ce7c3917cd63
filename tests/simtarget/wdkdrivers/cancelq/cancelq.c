/*
 * cancelq.sys - the cancel spin lock, cancel routines and cancel-safe queues used as the
 * WDK documents them: IRPs sent to the driver's own device are queued in an IO_CSQ by
 * its device-control dispatch routine and left pending, then cancelled with IoCancelIrp
 * or taken back with IoCsqRemoveNextIrp and IoCsqRemoveIrp.  Each case prints one
 * "cancel:" line.
 */
#include <ntddk.h>

#define IOCTL_CANCELQ_QUEUE CTL_CODE(FILE_DEVICE_UNKNOWN, 0x900, METHOD_BUFFERED, FILE_ANY_ACCESS)

static PDEVICE_OBJECT Device;
static IO_CSQ Queue, QueueEx;
static LIST_ENTRY Pending;
static KSPIN_LOCK QueueLock;
static IO_CSQ_IRP_CONTEXT Context;
static LONG Cancelled, CancelIrqlSeen, RejectNext;
static PIRP CancelledOrder[4];

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD CancelUnload;
DRIVER_DISPATCH Dispatch;
DRIVER_CANCEL PlainCancel;

VOID CsqInsert(PIO_CSQ Csq, PIRP Irp)
{
    UNREFERENCED_PARAMETER(Csq);
    InsertTailList(&Pending, &Irp->Tail.Overlay.ListEntry);
}

NTSTATUS CsqInsertEx(PIO_CSQ Csq, PIRP Irp, PVOID InsertContext)
{
    if (InsertContext == (PVOID)&RejectNext)
        return STATUS_DEVICE_BUSY;
    CsqInsert(Csq, Irp);
    return STATUS_SUCCESS;
}

VOID CsqRemove(PIO_CSQ Csq, PIRP Irp)
{
    UNREFERENCED_PARAMETER(Csq);
    RemoveEntryList(&Irp->Tail.Overlay.ListEntry);
}

PIRP CsqPeek(PIO_CSQ Csq, PIRP Irp, PVOID PeekContext)
{
    PLIST_ENTRY next = Irp ? Irp->Tail.Overlay.ListEntry.Flink : Pending.Flink;
    UNREFERENCED_PARAMETER(Csq);
    UNREFERENCED_PARAMETER(PeekContext);
    return next == &Pending ? NULL : CONTAINING_RECORD(next, IRP, Tail.Overlay.ListEntry);
}

_IRQL_raises_(DISPATCH_LEVEL)
VOID CsqAcquire(PIO_CSQ Csq, PKIRQL Irql)
{
    UNREFERENCED_PARAMETER(Csq);
    KeAcquireSpinLock(&QueueLock, Irql);
}

VOID CsqRelease(PIO_CSQ Csq, KIRQL Irql)
{
    UNREFERENCED_PARAMETER(Csq);
    KeReleaseSpinLock(&QueueLock, Irql);
}

VOID CsqCompleteCanceled(PIO_CSQ Csq, PIRP Irp)
{
    UNREFERENCED_PARAMETER(Csq);
    CancelledOrder[Cancelled++ & 3] = Irp;
    Irp->IoStatus.Status = STATUS_CANCELLED;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
}

NTSTATUS Dispatch(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    UNREFERENCED_PARAMETER(DeviceObject);
    if (sp->MajorFunction == IRP_MJ_DEVICE_CONTROL
        && sp->Parameters.DeviceIoControl.IoControlCode == IOCTL_CANCELQ_QUEUE) {
        IoCsqInsertIrp(&Queue, Irp, sp->Parameters.DeviceIoControl.Type3InputBuffer);
        return STATUS_PENDING;
    }
    Irp->IoStatus.Status = STATUS_SUCCESS;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_SUCCESS;
}

VOID PlainCancel(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    CancelIrqlSeen = KeGetCurrentIrql() * 10 + Irp->Cancel;
    IoReleaseCancelSpinLock(Irp->CancelIrql);
    Cancelled++;
}

/* An IRP for the driver's own device, with its next stack location a queueing request. */
static PIRP QueueIrp(PIO_CSQ_IRP_CONTEXT IrpContext, NTSTATUS *Status)
{
    PIRP irp = IoAllocateIrp(Device->StackSize, FALSE);
    PIO_STACK_LOCATION sp = IoGetNextIrpStackLocation(irp);
    irp->IoStatus.Status = STATUS_PENDING;
    sp->MajorFunction = IRP_MJ_DEVICE_CONTROL;
    sp->Parameters.DeviceIoControl.IoControlCode = IOCTL_CANCELQ_QUEUE;
    sp->Parameters.DeviceIoControl.Type3InputBuffer = IrpContext;
    *Status = IoCallDriver(Device, irp);
    return irp;
}

static VOID CancelSpinLock(VOID)
{
    KIRQL irql, inside;
    IoAcquireCancelSpinLock(&irql);
    inside = KeGetCurrentIrql();
    IoReleaseCancelSpinLock(irql);
    DbgPrint("cancel: spin lock inside=%u old=%u after=%u\n", inside, irql, KeGetCurrentIrql());
}

static VOID CancelRoutines(VOID)
{
    PIRP irp = IoAllocateIrp(1, FALSE);
    PDRIVER_CANCEL previous;
    BOOLEAN first, second, unset, later;

    Cancelled = 0;
    previous = IoSetCancelRoutine(irp, PlainCancel);
    first = IoCancelIrp(irp);
    second = IoCancelIrp(irp);
    IoFreeIrp(irp);

    irp = IoAllocateIrp(1, FALSE);
    IoSetCancelRoutine(irp, PlainCancel);
    unset = IoSetCancelRoutine(irp, NULL) == PlainCancel;
    later = IoCancelIrp(irp);
    DbgPrint("cancel: routine previous=%u first=%u second=%u calls=%d seen=%d irql=%u unset=%u later=%u flag=%u\n",
             previous != NULL, first, second, Cancelled, CancelIrqlSeen, KeGetCurrentIrql(), unset,
             later, irp->Cancel);
    IoFreeIrp(irp);
}

static VOID QueueAndCancel(VOID)
{
    PIRP irps[3], next[3];
    NTSTATUS status[3];
    int i;

    Cancelled = 0;
    for (i = 0; i < 3; i++)
        irps[i] = QueueIrp(NULL, &status[i]);
    DbgPrint("cancel: csq queued=%x,%x,%x pending_flag=%u routine_set=%u\n", status[0], status[1], status[2],
             (IoGetNextIrpStackLocation(irps[0]) + 1)->Control & SL_PENDING_RETURNED,
             irps[1]->CancelRoutine != NULL);
    i = IoCancelIrp(irps[1]);
    next[0] = IoCsqRemoveNextIrp(&Queue, NULL);
    next[1] = IoCsqRemoveNextIrp(&Queue, NULL);
    next[2] = IoCsqRemoveNextIrp(&Queue, NULL);
    DbgPrint("cancel: csq cancel=%d completed=%d status=%x same=%u next=%d,%d empty=%u routine_cleared=%u late=%u\n",
             i, Cancelled, irps[1]->IoStatus.Status, CancelledOrder[0] == irps[1], next[0] == irps[0],
             next[1] == irps[2], next[2] == NULL, irps[0]->CancelRoutine == NULL, IoCancelIrp(irps[0]));
    for (i = 0; i < 3; i++)
        IoFreeIrp(irps[i]);
}

static VOID QueueWithContext(VOID)
{
    NTSTATUS status;
    PIRP irp = QueueIrp(&Context, &status), taken, again;
    PIRP cancelled;
    BOOLEAN known = Context.Irp == irp;

    taken = IoCsqRemoveIrp(&Queue, &Context);
    again = IoCsqRemoveIrp(&Queue, &Context);
    IoFreeIrp(irp);

    Cancelled = 0;
    cancelled = QueueIrp(&Context, &status);
    IoCancelIrp(cancelled);
    DbgPrint("cancel: context known=%u taken=%u again=%u after_cancel=%u completed=%d empty=%u\n", known,
             taken == irp, again == NULL, IoCsqRemoveIrp(&Queue, &Context) == NULL, Cancelled,
             IsListEmpty(&Pending));
    IoFreeIrp(cancelled);
}

static VOID InsertEx(VOID)
{
    PIRP irp = IoAllocateIrp(1, FALSE), late = IoAllocateIrp(1, FALSE);
    NTSTATUS rejected, accepted, cancelled;

    rejected = IoCsqInsertIrpEx(&QueueEx, irp, NULL, &RejectNext);
    Cancelled = 0;
    late->Cancel = TRUE;
    cancelled = IoCsqInsertIrpEx(&QueueEx, late, NULL, NULL);
    accepted = IoCsqInsertIrpEx(&QueueEx, irp, NULL, NULL);
    DbgPrint("cancel: insert ex rejected=%x late_completed=%u cancelled_insert=%x completed=%d accepted=%x taken=%u\n",
             rejected, Cancelled == 1 && CancelledOrder[0] == late, cancelled, Cancelled, accepted,
             IoCsqRemoveNextIrp(&QueueEx, NULL) == irp);
    IoFreeIrp(irp);
    IoFreeIrp(late);
}

VOID CancelUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    IoDeleteDevice(Device);
    DbgPrint("cancel: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNICODE_STRING name = RTL_CONSTANT_STRING(L"\\Device\\CancelQ");
    NTSTATUS status;
    UNREFERENCED_PARAMETER(RegistryPath);

    status = IoCreateDevice(DriverObject, 0, &name, FILE_DEVICE_UNKNOWN, 0, FALSE, &Device);
    if (!NT_SUCCESS(status))
        return status;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = Dispatch;
    DriverObject->DriverUnload = CancelUnload;
    InitializeListHead(&Pending);
    KeInitializeSpinLock(&QueueLock);
    IoCsqInitialize(&Queue, CsqInsert, CsqRemove, CsqPeek, CsqAcquire, CsqRelease, CsqCompleteCanceled);
    IoCsqInitializeEx(&QueueEx, CsqInsertEx, CsqRemove, CsqPeek, CsqAcquire, CsqRelease, CsqCompleteCanceled);

    CancelSpinLock();
    CancelRoutines();
    QueueAndCancel();
    QueueWithContext();
    InsertEx();
    return STATUS_SUCCESS;
}
