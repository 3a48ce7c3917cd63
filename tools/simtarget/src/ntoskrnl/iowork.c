/*
 * iowork.c - I/O work items and remove locks.
 *
 * Work items run in one system worker thread (thread.c), made when the first item is
 * queued, at PASSIVE_LEVEL, in the order queued; the worker runs when the thread that
 * queued the item waits or delays, or at the system loop's next pass.  An IO_WORKITEM
 * comes from nonpaged pool (tag 'IoWk') or is the caller's storage of IoSizeofWorkItem
 * bytes (IoInitializeWorkItem).  Rules from the WDK documentation: IoQueueWorkItem may
 * be called at IRQL <= DISPATCH_LEVEL; a work item must not be queued again before its
 * routine has started (here such a second queue is ignored and the routine runs once);
 * a routine must return at PASSIVE_LEVEL, or bug check WORKER_RETURNED_AT_BAD_IRQL
 * (0xE1): (routine, IRQL, item, item).
 *
 * Remove locks use the common block of IO_REMOVE_LOCK (the checked-build debug block
 * after it is left alone, so both sizes the WDK's macros pass work): IoCount starts at
 * 1; acquiring after IoReleaseRemoveLockAndWait has begun fails with
 * STATUS_DELETE_PENDING; IoReleaseRemoveLockAndWait drops the caller's acquisition and
 * the initial count and waits until every other holder has released.
 */
#include "ksimrt.h"

#define WORKITEM_TAG 'kWoI'
#define WORKER_RETURNED_AT_BAD_IRQL 0x000000E1

typedef VOID (NTAPI *PIO_WORKITEM_ROUTINE)(PDEVICE_OBJECT DeviceObject, PVOID Context);

typedef struct _IO_WORKITEM {
    LIST_ENTRY Link;
    PIO_WORKITEM_ROUTINE Routine;
    PVOID IoObject;
    PVOID Context;
    BOOLEAN Queued;
    BOOLEAN FromPool;
} IO_WORKITEM, *PIO_WORKITEM;

typedef struct _IO_REMOVE_LOCK_COMMON_BLOCK {
    BOOLEAN Removed;
    BOOLEAN Reserved[3];
    LONG volatile IoCount;
    KEVENT RemoveEvent;
} IO_REMOVE_LOCK_COMMON_BLOCK, *PIO_REMOVE_LOCK;

typedef VOID (NTAPI *PKSTART_ROUTINE)(PVOID StartContext);
NTSTATUS NTAPI PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess, PVOID ObjectAttributes,
    HANDLE ProcessHandle, PVOID ClientId, PKSTART_ROUTINE StartRoutine, PVOID StartContext);
NTSTATUS NTAPI KeWaitForSingleObject(PVOID Object, ULONG WaitReason, KPROCESSOR_MODE WaitMode,
                                     BOOLEAN Alertable, PLARGE_INTEGER Timeout);
VOID NTAPI KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
LONG NTAPI KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait);

static LIST_ENTRY IopWorkQueue = { &IopWorkQueue, &IopWorkQueue };
static KEVENT IopWorkReady;
static BOOLEAN IopWorkerStarted;

/* ---- Work items ---- */

static VOID NTAPI IopWorkerThread(PVOID Context)
{
    (void)Context;
    for (;;) {
        KeWaitForSingleObject(&IopWorkReady, 0, KernelMode, FALSE, NULL);
        while (IopWorkQueue.Flink != &IopWorkQueue) {
            PIO_WORKITEM item = CONTAINING_RECORD(IopWorkQueue.Flink, IO_WORKITEM, Link);
            RemoveEntryList(&item->Link);
            item->Queued = FALSE;
            item->Routine(item->IoObject, item->Context);
            if (KeGetCurrentIrql() != PASSIVE_LEVEL)
                KeBugCheckEx(WORKER_RETURNED_AT_BAD_IRQL, (ULONG_PTR)item->Routine, KeGetCurrentIrql(),
                             (ULONG_PTR)item, (ULONG_PTR)item);
        }
    }
}

ULONG NTAPI IoSizeofWorkItem(VOID) { return sizeof(IO_WORKITEM); }

VOID NTAPI IoInitializeWorkItem(PVOID IoObject, PIO_WORKITEM IoWorkItem)
{
    memset(IoWorkItem, 0, sizeof(*IoWorkItem));
    IoWorkItem->IoObject = IoObject;
}

VOID NTAPI IoUninitializeWorkItem(PIO_WORKITEM IoWorkItem) { (void)IoWorkItem; }

PIO_WORKITEM NTAPI IoAllocateWorkItem(PDEVICE_OBJECT DeviceObject)
{
    PIO_WORKITEM item = ExAllocatePoolWithTag(NonPagedPool, sizeof(IO_WORKITEM), WORKITEM_TAG);
    if (item) {
        IoInitializeWorkItem(DeviceObject, item);
        item->FromPool = TRUE;
    }
    return item;
}

VOID NTAPI IoFreeWorkItem(PIO_WORKITEM IoWorkItem) { ExFreePoolWithTag(IoWorkItem, WORKITEM_TAG); }

VOID NTAPI IoQueueWorkItem(PIO_WORKITEM IoWorkItem, PIO_WORKITEM_ROUTINE WorkerRoutine, ULONG QueueType,
                           PVOID Context)
{
    HANDLE handle;
    (void)QueueType;
    if (!IopWorkerStarted) {
        KeInitializeEvent(&IopWorkReady, SynchronizationEvent, FALSE);
        if (!NT_SUCCESS(PsCreateSystemThread(&handle, 0, NULL, NULL, NULL, IopWorkerThread, NULL)))
            return;
        ZwClose(handle);
        IopWorkerStarted = TRUE;
    }
    if (IoWorkItem->Queued)
        return;
    IoWorkItem->Routine = WorkerRoutine;
    IoWorkItem->Context = Context;
    IoWorkItem->Queued = TRUE;
    InsertTailList(&IopWorkQueue, &IoWorkItem->Link);
    KeSetEvent(&IopWorkReady, 0, FALSE);
}

/* ---- Remove locks ---- */

VOID NTAPI IoInitializeRemoveLockEx(PIO_REMOVE_LOCK Lock, ULONG AllocateTag, ULONG MaxLockedMinutes,
                                    ULONG HighWatermark, ULONG RemlockSize)
{
    (void)AllocateTag; (void)MaxLockedMinutes; (void)HighWatermark; (void)RemlockSize;
    Lock->Removed = FALSE;
    Lock->IoCount = 1;
    KeInitializeEvent(&Lock->RemoveEvent, NotificationEvent, FALSE);
}

static VOID IopDropRemoveLock(PIO_REMOVE_LOCK Lock)
{
    if (--Lock->IoCount == 0)
        KeSetEvent(&Lock->RemoveEvent, 0, FALSE);
}

NTSTATUS NTAPI IoAcquireRemoveLockEx(PIO_REMOVE_LOCK Lock, PVOID Tag, PCSTR File, ULONG Line, ULONG RemlockSize)
{
    (void)Tag; (void)File; (void)Line; (void)RemlockSize;
    Lock->IoCount++;
    if (Lock->Removed) {
        IopDropRemoveLock(Lock);
        return STATUS_DELETE_PENDING;
    }
    return STATUS_SUCCESS;
}

VOID NTAPI IoReleaseRemoveLockEx(PIO_REMOVE_LOCK Lock, PVOID Tag, ULONG RemlockSize)
{
    (void)Tag; (void)RemlockSize;
    IopDropRemoveLock(Lock);
}

VOID NTAPI IoReleaseRemoveLockAndWaitEx(PIO_REMOVE_LOCK Lock, PVOID Tag, ULONG RemlockSize)
{
    (void)Tag; (void)RemlockSize;
    Lock->Removed = TRUE;
    IopDropRemoveLock(Lock);            /* the caller's own acquisition */
    IopDropRemoveLock(Lock);            /* the count the lock started with */
    KeWaitForSingleObject(&Lock->RemoveEvent, 0, KernelMode, FALSE, NULL);
}
