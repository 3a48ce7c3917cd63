/*
 * sched.c - deferred procedure calls and kernel timers, delivered from the simulated
 * clock at DISPATCH_LEVEL.
 *
 * The machine's clock is instruction based (KiQueryInterruptTime, 100 ns units) and has
 * no periodic interrupt, so the clock's work is done whenever the processor could take
 * it: KiDeliverClock expires the timers that are due (signals each, queues its DPC,
 * re-arms a periodic one) and runs the DPC queue.  It runs from the system loop, from
 * every wait and delay (one processor: a waiting thread leaves the processor to the
 * clock and its DPCs), and a DPC queued below DISPATCH_LEVEL runs before
 * KeInsertQueueDpc returns, as the DISPATCH_LEVEL software interrupt it requests would.
 * A DPC queued at or above DISPATCH_LEVEL runs when IRQL drops below it
 * (KiDispatchPendingDpcs, called by KeLowerIrql).  DPC routines always run at
 * DISPATCH_LEVEL and must return there; one that does not is bug check
 * IRQL_UNEXPECTED_VALUE (0xC8): (IRQL << 16 | 2 << 8, routine, DPC, 0).
 *
 * Rules from the WDK documentation: KeInsertQueueDpc returns FALSE for a DPC already
 * queued (its arguments are not changed); KeRemoveQueueDpc TRUE only for one it
 * removed; a HighImportance DPC goes to the head of the queue.  KeSetTimer(Ex) returns
 * TRUE when the timer was already set (it is cancelled first), sets the timer to the
 * not-signalled state, takes a negative due time as relative (100 ns units) and a
 * positive one as absolute system time; a period is in milliseconds.  KeCancelTimer
 * returns TRUE when the timer was set.  A notification timer stays signalled until set
 * again; a synchronization timer is reset by the wait it satisfies (sync.c).
 */
#include "ksimrt.h"

#define DPC_OBJECT_TYPE 0x13
#define LOW_IMPORTANCE 0
#define MEDIUM_IMPORTANCE 1
#define HIGH_IMPORTANCE 2
#define IRQL_UNEXPECTED_VALUE 0xC8

static LIST_ENTRY KiDpcQueue = { &KiDpcQueue, &KiDpcQueue };
static LIST_ENTRY KiTimerQueue = { &KiTimerQueue, &KiTimerQueue };
static UCHAR KiDpcQueueData;            /* what KDPC.DpcData points at while queued */
static BOOLEAN KiDpcRunning;
BOOLEAN volatile KiDpcPending;

/* ---- DPCs ---- */

VOID NTAPI KeInitializeDpc(PKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext)
{
    Dpc->Type = DPC_OBJECT_TYPE;
    Dpc->Importance = MEDIUM_IMPORTANCE;
    Dpc->Number = 0;
    Dpc->DpcListEntry.Flink = Dpc->DpcListEntry.Blink = NULL;
    Dpc->DeferredRoutine = DeferredRoutine;
    Dpc->DeferredContext = DeferredContext;
    Dpc->SystemArgument1 = Dpc->SystemArgument2 = NULL;
    Dpc->DpcData = NULL;
}

VOID NTAPI KeInitializeThreadedDpc(PKDPC Dpc, PKDEFERRED_ROUTINE DeferredRoutine, PVOID DeferredContext)
{
    KeInitializeDpc(Dpc, DeferredRoutine, DeferredContext);
}

VOID NTAPI KeSetImportanceDpc(PKDPC Dpc, ULONG Importance) { Dpc->Importance = (UCHAR)Importance; }
VOID NTAPI KeSetTargetProcessorDpc(PKDPC Dpc, CCHAR Number) { Dpc->Number = (USHORT)Number; }

/* Runs every queued DPC at DISPATCH_LEVEL; the caller is below it. */
static VOID KiRunDpcQueue(VOID)
{
    if (KiDpcRunning)
        return;
    KiDpcRunning = TRUE;
    while (KiDpcQueue.Flink != &KiDpcQueue) {
        PKDPC dpc = CONTAINING_RECORD(KiDpcQueue.Flink, KDPC, DpcListEntry);
        RemoveEntryList(&dpc->DpcListEntry);
        dpc->DpcData = NULL;            /* the routine may queue it again */
        dpc->DeferredRoutine(dpc, dpc->DeferredContext, dpc->SystemArgument1, dpc->SystemArgument2);
        if (KiPcr.Irql != DISPATCH_LEVEL)
            KeBugCheckEx(IRQL_UNEXPECTED_VALUE, (ULONG_PTR)KiPcr.Irql << 16 | DISPATCH_LEVEL << 8,
                         (ULONG_PTR)dpc->DeferredRoutine, (ULONG_PTR)dpc, 0);
    }
    KiDpcPending = FALSE;
    KiDpcRunning = FALSE;
}

static BOOLEAN KiQueueDpc(PKDPC Dpc, PVOID Argument1, PVOID Argument2)
{
    if (Dpc->DpcData)
        return FALSE;
    Dpc->SystemArgument1 = Argument1;
    Dpc->SystemArgument2 = Argument2;
    Dpc->DpcData = &KiDpcQueueData;
    if (Dpc->Importance == HIGH_IMPORTANCE)
        InsertHeadList(&KiDpcQueue, &Dpc->DpcListEntry);
    else
        InsertTailList(&KiDpcQueue, &Dpc->DpcListEntry);
    KiDpcPending = TRUE;
    return TRUE;
}

/* Called with IRQL just lowered below DISPATCH_LEVEL (KeLowerIrql). */
VOID KiDispatchPendingDpcs(VOID)
{
    KIRQL old = KiPcr.Irql;
    if (!KiDpcPending || old >= DISPATCH_LEVEL || KiDpcRunning)
        return;
    KiPcr.Irql = DISPATCH_LEVEL;
    KiRunDpcQueue();
    KiPcr.Irql = old;
}

BOOLEAN NTAPI KeInsertQueueDpc(PKDPC Dpc, PVOID SystemArgument1, PVOID SystemArgument2)
{
    BOOLEAN queued = KiQueueDpc(Dpc, SystemArgument1, SystemArgument2);
    if (queued)
        KiDispatchPendingDpcs();
    return queued;
}

BOOLEAN NTAPI KeRemoveQueueDpc(PKDPC Dpc)
{
    if (!Dpc->DpcData)
        return FALSE;
    RemoveEntryList(&Dpc->DpcListEntry);
    Dpc->DpcData = NULL;
    return TRUE;
}

VOID NTAPI KeFlushQueuedDpcs(VOID) { KiDispatchPendingDpcs(); }

/* ---- Timers ---- */

VOID NTAPI KeInitializeTimerEx(PKTIMER Timer, TIMER_TYPE Type)
{
    Timer->Header.Type = Type == SynchronizationTimer ? KOBJ_TIMER_SYNCHRONIZATION : KOBJ_TIMER_NOTIFICATION;
    Timer->Header.Absolute = 0;
    Timer->Header.Size = sizeof(KTIMER) / sizeof(LONG);
    Timer->Header.Inserted = FALSE;
    Timer->Header.SignalState = 0;
    Timer->Header.WaitListHead.Flink = Timer->Header.WaitListHead.Blink = &Timer->Header.WaitListHead;
    Timer->DueTime = 0;
    Timer->TimerListEntry.Flink = Timer->TimerListEntry.Blink = NULL;
    Timer->Dpc = NULL;
    Timer->Processor = 0;
    Timer->Period = 0;
}

VOID NTAPI KeInitializeTimer(PKTIMER Timer) { KeInitializeTimerEx(Timer, NotificationTimer); }

/* The interrupt time a due time (relative if negative, absolute system time if not) means. */
ULONG64 KiDueInterruptTime(LONGLONG DueTime)
{
    ULONG64 now = KiQueryInterruptTime();
    if (DueTime < 0)
        return now + (ULONG64)-DueTime;
    if ((ULONG64)DueTime <= KiLoaderBlock->SystemTimeAtBoot + now)
        return now;
    return (ULONG64)DueTime - KiLoaderBlock->SystemTimeAtBoot;
}

/* Keeps the queue sorted by due time, earliest first. */
static VOID KiInsertTimer(PKTIMER Timer, ULONG64 Due)
{
    PLIST_ENTRY link = KiTimerQueue.Flink;
    Timer->DueTime = Due;
    while (link != &KiTimerQueue && CONTAINING_RECORD(link, KTIMER, TimerListEntry)->DueTime <= Due)
        link = link->Flink;
    InsertTailList(link, &Timer->TimerListEntry);
    Timer->Header.Inserted = TRUE;
}

BOOLEAN NTAPI KeCancelTimer(PKTIMER Timer)
{
    if (!Timer->Header.Inserted)
        return FALSE;
    RemoveEntryList(&Timer->TimerListEntry);
    Timer->Header.Inserted = FALSE;
    return TRUE;
}

BOOLEAN NTAPI KeSetTimerEx(PKTIMER Timer, LARGE_INTEGER DueTime, LONG Period, PKDPC Dpc)
{
    BOOLEAN was_set = KeCancelTimer(Timer);
    Timer->Header.SignalState = 0;
    Timer->Header.Absolute = DueTime.QuadPart >= 0;
    Timer->Dpc = Dpc;
    Timer->Period = Period;
    KiInsertTimer(Timer, KiDueInterruptTime(DueTime.QuadPart));
    return was_set;
}

BOOLEAN NTAPI KeSetTimer(PKTIMER Timer, LARGE_INTEGER DueTime, PKDPC Dpc)
{
    return KeSetTimerEx(Timer, DueTime, 0, Dpc);
}

BOOLEAN NTAPI KeReadStateTimer(PKTIMER Timer) { return Timer->Header.SignalState != 0; }

static VOID KiExpireTimers(ULONG64 Now)
{
    while (KiTimerQueue.Flink != &KiTimerQueue) {
        PKTIMER timer = CONTAINING_RECORD(KiTimerQueue.Flink, KTIMER, TimerListEntry);
        if (timer->DueTime > Now)
            break;
        RemoveEntryList(&timer->TimerListEntry);
        timer->Header.Inserted = FALSE;
        timer->Header.SignalState = 1;
        if (timer->Period > 0)
            KiInsertTimer(timer, Now + (ULONG64)timer->Period * 10000);
        if (timer->Dpc)
            KiQueueDpc(timer->Dpc, (PVOID)(ULONG_PTR)(ULONG)Now, (PVOID)(ULONG_PTR)(ULONG)(Now >> 32));
    }
}

/* The clock's work: due timers, then the DPC queue, at DISPATCH_LEVEL.  Nothing is done
 * at or above DISPATCH_LEVEL: it waits until IRQL drops. */
VOID KiDeliverClock(VOID)
{
    KIRQL old = KiPcr.Irql;
    if (old >= DISPATCH_LEVEL || KiDpcRunning)
        return;
    if (KiTimerQueue.Flink == &KiTimerQueue && !KiDpcPending)
        return;
    KiPcr.Irql = DISPATCH_LEVEL;
    KiExpireTimers(KiQueryInterruptTime());
    if (KiDpcPending)
        KiRunDpcQueue();
    KiPcr.Irql = old;
}

/* The earliest due time in the queue, or ~0 when no timer is set (sync.c's waits). */
ULONG64 KiNextTimerDue(VOID)
{
    if (KiTimerQueue.Flink == &KiTimerQueue)
        return ~0ULL;
    return CONTAINING_RECORD(KiTimerQueue.Flink, KTIMER, TimerListEntry)->DueTime;
}
