/*
 * dpctimer.sys - DPCs and kernel timers used as the WDK documents them: a DPC queued at
 * PASSIVE_LEVEL and at DISPATCH_LEVEL, removed from the queue, one-shot notification
 * and synchronization timers waited on, a timer cancelled, and a periodic timer whose
 * DPC keeps running from the clock after DriverEntry has returned and cancels itself.
 * Each case prints one "dpc:" line of facts the test checks.
 */
#include <ntddk.h>

#define MS(n) ((LONGLONG)(n) * -10000)

typedef struct _RUNS {
    LONG Count;
    KIRQL Irql;
    PVOID Context, Argument1, Argument2;
} RUNS;

static KDPC Dpc, TimerDpc, PeriodicDpc;
static KTIMER Timer, PeriodicTimer;
static RUNS Runs, TimerRuns;
static LONG PeriodicRuns;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD DpcUnload;
KDEFERRED_ROUTINE CountDpc, PeriodicRoutine;

VOID CountDpc(PKDPC Self, PVOID Context, PVOID Argument1, PVOID Argument2)
{
    RUNS *runs = Context;
    UNREFERENCED_PARAMETER(Self);
    runs->Count++;
    runs->Irql = KeGetCurrentIrql();
    runs->Argument1 = Argument1;
    runs->Argument2 = Argument2;
}

VOID PeriodicRoutine(PKDPC Self, PVOID Context, PVOID Argument1, PVOID Argument2)
{
    UNREFERENCED_PARAMETER(Self);
    UNREFERENCED_PARAMETER(Argument1);
    UNREFERENCED_PARAMETER(Argument2);
    PeriodicRuns++;
    DbgPrint("dpc: periodic %ld irql=%u context=%u\n", PeriodicRuns, (unsigned)KeGetCurrentIrql(),
             Context == &PeriodicTimer);
    if (PeriodicRuns == 3)
        DbgPrint("dpc: cancelled from its dpc %u\n", KeCancelTimer(&PeriodicTimer));
}

static VOID QueueAtPassive(VOID)
{
    BOOLEAN queued;
    KeInitializeDpc(&Dpc, CountDpc, &Runs);
    queued = KeInsertQueueDpc(&Dpc, (PVOID)11, (PVOID)22);
    DbgPrint("dpc: passive queued=%u ran=%ld irql=%u args=%u,%u\n", queued, Runs.Count, (unsigned)Runs.Irql,
             (unsigned)(ULONG_PTR)Runs.Argument1, (unsigned)(ULONG_PTR)Runs.Argument2);
}

static VOID QueueAtDispatch(VOID)
{
    KIRQL old;
    BOOLEAN first, second, removed, again, reinserted;
    LONG before;

    Runs.Count = 0;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    first = KeInsertQueueDpc(&Dpc, (PVOID)1, (PVOID)2);
    second = KeInsertQueueDpc(&Dpc, (PVOID)3, (PVOID)4);
    removed = KeRemoveQueueDpc(&Dpc);
    again = KeRemoveQueueDpc(&Dpc);
    reinserted = KeInsertQueueDpc(&Dpc, (PVOID)5, (PVOID)6);
    before = Runs.Count;
    KeLowerIrql(old);
    DbgPrint("dpc: dispatch first=%u second=%u removed=%u again=%u reinserted=%u ran=%ld/%ld args=%u,%u\n",
             first, second, removed, again, reinserted, before, Runs.Count,
             (unsigned)(ULONG_PTR)Runs.Argument1, (unsigned)(ULONG_PTR)Runs.Argument2);
}

static VOID WaitOnNotificationTimer(VOID)
{
    LARGE_INTEGER due;
    ULONGLONG start, waited;
    BOOLEAN fresh, reset, state0;
    NTSTATUS status;

    KeInitializeTimer(&Timer);
    KeInitializeDpc(&TimerDpc, CountDpc, &TimerRuns);
    state0 = KeReadStateTimer(&Timer);
    start = KeQueryInterruptTime();
    due.QuadPart = MS(50);
    fresh = KeSetTimer(&Timer, due, &TimerDpc);
    due.QuadPart = MS(10);
    reset = KeSetTimer(&Timer, due, &TimerDpc);
    status = KeWaitForSingleObject(&Timer, Executive, KernelMode, FALSE, NULL);
    waited = KeQueryInterruptTime() - start;
    DbgPrint("dpc: timer state=%u set=%u reset=%u wait=%08lx waited10ms=%u under50ms=%u signalled=%u "
             "dpc=%ld irql=%u\n", state0, fresh, reset, status, waited >= 100000, waited < 500000,
             KeReadStateTimer(&Timer), TimerRuns.Count, (unsigned)TimerRuns.Irql);
    status = KeWaitForSingleObject(&Timer, Executive, KernelMode, FALSE, NULL);
    DbgPrint("dpc: notification stays signalled wait=%08lx\n", status);
}

static VOID CancelTimer(VOID)
{
    LARGE_INTEGER due, timeout;
    BOOLEAN first, second;
    NTSTATUS status;

    TimerRuns.Count = 0;
    due.QuadPart = MS(1000);
    KeSetTimer(&Timer, due, &TimerDpc);
    first = KeCancelTimer(&Timer);
    second = KeCancelTimer(&Timer);
    timeout.QuadPart = MS(5);
    status = KeWaitForSingleObject(&Timer, Executive, KernelMode, FALSE, &timeout);
    DbgPrint("dpc: cancel first=%u second=%u wait=%08lx signalled=%u dpc=%ld\n", first, second, status,
             KeReadStateTimer(&Timer), TimerRuns.Count);
}

static VOID WaitOnSynchronizationTimer(VOID)
{
    KTIMER sync;
    LARGE_INTEGER due, zero;
    NTSTATUS first, second;

    KeInitializeTimerEx(&sync, SynchronizationTimer);
    due.QuadPart = MS(1);
    KeSetTimerEx(&sync, due, 0, NULL);
    first = KeWaitForSingleObject(&sync, Executive, KernelMode, FALSE, NULL);
    zero.QuadPart = 0;
    second = KeWaitForSingleObject(&sync, Executive, KernelMode, FALSE, &zero);
    DbgPrint("dpc: synchronization wait=%08lx state=%u again=%08lx\n", first, KeReadStateTimer(&sync), second);
}

static VOID AbsoluteTimer(VOID)
{
    KTIMER absolute;
    LARGE_INTEGER now, timeout;
    NTSTATUS status;

    KeInitializeTimer(&absolute);
    KeQuerySystemTime(&now);
    now.QuadPart += 20000;               /* 2 ms from now, as a system time */
    KeSetTimer(&absolute, now, NULL);
    timeout.QuadPart = MS(100);
    status = KeWaitForSingleObject(&absolute, Executive, KernelMode, FALSE, &timeout);
    DbgPrint("dpc: absolute wait=%08lx\n", status);
}

VOID DpcUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    DbgPrint("dpc: unload periodic=%ld still set=%u\n", PeriodicRuns, KeCancelTimer(&PeriodicTimer));
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    LARGE_INTEGER due;
    UNREFERENCED_PARAMETER(RegistryPath);

    DriverObject->DriverUnload = DpcUnload;
    QueueAtPassive();
    QueueAtDispatch();
    WaitOnNotificationTimer();
    CancelTimer();
    WaitOnSynchronizationTimer();
    AbsoluteTimer();
    KeInitializeTimer(&PeriodicTimer);
    KeInitializeDpc(&PeriodicDpc, PeriodicRoutine, &PeriodicTimer);
    due.QuadPart = MS(1);
    KeSetTimerEx(&PeriodicTimer, due, 2, &PeriodicDpc);
    DbgPrint("dpc: DriverEntry done periodic=%ld\n", PeriodicRuns);
    return STATUS_SUCCESS;
}
