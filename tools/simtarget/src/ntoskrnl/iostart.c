/*
 * iostart.c - device queues (KeInitializeDeviceQueue, KeInsertDeviceQueue,
 * KeInsertByKeyDeviceQueue, KeRemoveDeviceQueue, KeRemoveByKeyDeviceQueue,
 * KeRemoveEntryDeviceQueue) and the StartIo model built on the device queue of every
 * device object (IoStartPacket, IoStartNextPacket, IoStartNextPacketByKey,
 * IoSetStartIoAttributes).
 *
 * As the WDK documents them: a device queue is busy or not; inserting into a queue
 * that is not busy makes it busy and returns FALSE (the caller starts the work at
 * once), into a busy one queues the entry (by ascending sort key for the ByKey form)
 * and returns TRUE; removing from a busy queue returns the first entry (the first whose
 * key is at least the given one, else the first, for the ByKey form) or, empty,
 * clears busy and returns NULL.  Insert and remove are for DISPATCH_LEVEL; the queue's
 * spin lock is taken around each change all the same.
 *
 * IoStartPacket raises to DISPATCH_LEVEL; with a cancel routine it takes the cancel
 * spin lock and sets the routine in the IRP.  If the device queue was idle the IRP
 * becomes DeviceObject->CurrentIrp and DriverStartIo runs at DISPATCH_LEVEL (the
 * cancel spin lock released first); otherwise the IRP waits in the queue, and an IRP
 * already cancelled has its cancel routine called at once (with the cancel spin lock
 * held, as a cancel routine expects).  IoStartNextPacket and IoStartNextPacketByKey,
 * called at DISPATCH_LEVEL when the current IRP is done, clear CurrentIrp and start
 * the next queued IRP.  IoSetStartIoAttributes is accepted and changes nothing:
 * StartIo is never deferred here (it is documented as an optimisation for drivers
 * that call IoStartNextPacket from StartIo).
 *
 * Sources (facts only): the WDK documentation of these routines, "Writing a StartIo
 * Routine" and "Canceling IRPs in Driver-Managed Queues"; KDEVICE_QUEUE in wdm.h.
 */
#include "iop.h"

VOID NTAPI KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK Lock);
VOID NTAPI KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK Lock);

/* ---- Device queues ---- */

VOID NTAPI KeInitializeDeviceQueue(PKDEVICE_QUEUE DeviceQueue)
{
    DeviceQueue->Type = DeviceQueueObject;
    DeviceQueue->Size = sizeof(KDEVICE_QUEUE);
    DeviceQueue->DeviceListHead.Flink = DeviceQueue->DeviceListHead.Blink = &DeviceQueue->DeviceListHead;
    DeviceQueue->Lock = 0;
    DeviceQueue->Busy = FALSE;
}

static BOOLEAN KiInsertDeviceQueue(PKDEVICE_QUEUE Queue, PKDEVICE_QUEUE_ENTRY Entry, BOOLEAN ByKey, ULONG SortKey)
{
    BOOLEAN queued = FALSE;
    KeAcquireSpinLockAtDpcLevel(&Queue->Lock);
    if (!Queue->Busy) {
        Queue->Busy = TRUE;
    } else {
        PLIST_ENTRY next = &Queue->DeviceListHead;
        if (ByKey) {
            Entry->SortKey = SortKey;
            for (next = Queue->DeviceListHead.Flink; next != &Queue->DeviceListHead; next = next->Flink)
                if (CONTAINING_RECORD(next, KDEVICE_QUEUE_ENTRY, DeviceListEntry)->SortKey > SortKey)
                    break;
        }
        InsertTailList(next, &Entry->DeviceListEntry);   /* just before next */
        queued = TRUE;
    }
    Entry->Inserted = queued;
    KeReleaseSpinLockFromDpcLevel(&Queue->Lock);
    return queued;
}

BOOLEAN NTAPI KeInsertDeviceQueue(PKDEVICE_QUEUE DeviceQueue, PKDEVICE_QUEUE_ENTRY DeviceQueueEntry)
{
    return KiInsertDeviceQueue(DeviceQueue, DeviceQueueEntry, FALSE, 0);
}

BOOLEAN NTAPI KeInsertByKeyDeviceQueue(PKDEVICE_QUEUE DeviceQueue, PKDEVICE_QUEUE_ENTRY DeviceQueueEntry, ULONG SortKey)
{
    return KiInsertDeviceQueue(DeviceQueue, DeviceQueueEntry, TRUE, SortKey);
}

static PKDEVICE_QUEUE_ENTRY KiRemoveDeviceQueue(PKDEVICE_QUEUE Queue, BOOLEAN ByKey, ULONG SortKey)
{
    PKDEVICE_QUEUE_ENTRY entry = NULL;
    KeAcquireSpinLockAtDpcLevel(&Queue->Lock);
    if (Queue->DeviceListHead.Flink == &Queue->DeviceListHead) {
        Queue->Busy = FALSE;
    } else {
        PLIST_ENTRY link = Queue->DeviceListHead.Flink;
        if (ByKey) {
            PLIST_ENTRY l;
            for (l = link; l != &Queue->DeviceListHead; l = l->Flink)
                if (CONTAINING_RECORD(l, KDEVICE_QUEUE_ENTRY, DeviceListEntry)->SortKey >= SortKey) {
                    link = l;
                    break;
                }
        }
        RemoveEntryList(link);
        entry = CONTAINING_RECORD(link, KDEVICE_QUEUE_ENTRY, DeviceListEntry);
        entry->Inserted = FALSE;
    }
    KeReleaseSpinLockFromDpcLevel(&Queue->Lock);
    return entry;
}

PKDEVICE_QUEUE_ENTRY NTAPI KeRemoveDeviceQueue(PKDEVICE_QUEUE DeviceQueue)
{
    return KiRemoveDeviceQueue(DeviceQueue, FALSE, 0);
}

PKDEVICE_QUEUE_ENTRY NTAPI KeRemoveByKeyDeviceQueue(PKDEVICE_QUEUE DeviceQueue, ULONG SortKey)
{
    return KiRemoveDeviceQueue(DeviceQueue, TRUE, SortKey);
}

/* Takes the entry out if it is queued (TRUE); may be called at or below DISPATCH_LEVEL. */
BOOLEAN NTAPI KeRemoveEntryDeviceQueue(PKDEVICE_QUEUE DeviceQueue, PKDEVICE_QUEUE_ENTRY DeviceQueueEntry)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    BOOLEAN removed = DeviceQueueEntry->Inserted;
    KeAcquireSpinLockAtDpcLevel(&DeviceQueue->Lock);
    if (removed) {
        RemoveEntryList(&DeviceQueueEntry->DeviceListEntry);
        DeviceQueueEntry->Inserted = FALSE;
    }
    KeReleaseSpinLockFromDpcLevel(&DeviceQueue->Lock);
    KeLowerIrql(old);
    return removed;
}

/* ---- StartIo ---- */

static PDRIVER_CANCEL IopExchangeCancel(PIRP Irp, PDRIVER_CANCEL Routine)
{
    return (PDRIVER_CANCEL)__atomic_exchange_n(&Irp->CancelRoutine, (PVOID)Routine, __ATOMIC_SEQ_CST);
}

VOID NTAPI IoStartPacket(PDEVICE_OBJECT DeviceObject, PIRP Irp, PULONG Key, PDRIVER_CANCEL CancelFunction)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL), cancelIrql = DISPATCH_LEVEL;
    BOOLEAN queued;

    if (CancelFunction) {
        IoAcquireCancelSpinLock(&cancelIrql);
        IopExchangeCancel(Irp, CancelFunction);
    }
    queued = Key ? KeInsertByKeyDeviceQueue(IopDeviceQueue(DeviceObject), IopDeviceQueueEntry(Irp), *Key)
                 : KeInsertDeviceQueue(IopDeviceQueue(DeviceObject), IopDeviceQueueEntry(Irp));
    if (!queued) {
        DeviceObject->CurrentIrp = Irp;
        if (CancelFunction)
            IoReleaseCancelSpinLock(cancelIrql);
        ((PDRIVER_STARTIO)DeviceObject->DriverObject->DriverStartIo)(DeviceObject, Irp);
    } else if (CancelFunction) {
        /* Cancelled before it was queued: nobody else will call the routine. */
        if (Irp->Cancel && IopExchangeCancel(Irp, NULL)) {
            Irp->CancelIrql = cancelIrql;
            CancelFunction(DeviceObject, Irp);
        } else {
            IoReleaseCancelSpinLock(cancelIrql);
        }
    }
    KeLowerIrql(old);
}

static VOID IopStartNext(PDEVICE_OBJECT DeviceObject, BOOLEAN Cancelable, BOOLEAN ByKey, ULONG Key)
{
    KIRQL cancelIrql = DISPATCH_LEVEL;
    PKDEVICE_QUEUE_ENTRY entry;

    if (Cancelable)
        IoAcquireCancelSpinLock(&cancelIrql);
    DeviceObject->CurrentIrp = NULL;
    entry = ByKey ? KeRemoveByKeyDeviceQueue(IopDeviceQueue(DeviceObject), Key)
                  : KeRemoveDeviceQueue(IopDeviceQueue(DeviceObject));
    if (entry) {
        PIRP irp = CONTAINING_RECORD(entry, IRP, TailPad);
        DeviceObject->CurrentIrp = irp;
        if (Cancelable)
            IoReleaseCancelSpinLock(cancelIrql);
        ((PDRIVER_STARTIO)DeviceObject->DriverObject->DriverStartIo)(DeviceObject, irp);
    } else if (Cancelable) {
        IoReleaseCancelSpinLock(cancelIrql);
    }
}

VOID NTAPI IoStartNextPacket(PDEVICE_OBJECT DeviceObject, BOOLEAN Cancelable)
{
    IopStartNext(DeviceObject, Cancelable, FALSE, 0);
}

VOID NTAPI IoStartNextPacketByKey(PDEVICE_OBJECT DeviceObject, BOOLEAN Cancelable, ULONG Key)
{
    IopStartNext(DeviceObject, Cancelable, TRUE, Key);
}

VOID NTAPI IoSetStartIoAttributes(PDEVICE_OBJECT DeviceObject, BOOLEAN DeferredStartIo, BOOLEAN NonCancelable)
{
    (void)DeviceObject; (void)DeferredStartIo; (void)NonCancelable;
}
