/*
 * kewait.sys - events, semaphores, mutexes and waits with timeouts used as the WDK
 * documents them: a wait satisfied by a timer's DPC, zero and relative timeouts,
 * synchronization events reset by the wait they satisfy, semaphore counts and limit,
 * recursive mutex ownership, KeWaitForMultipleObjects with WaitAny and WaitAll, and
 * KeDelayExecutionThread letting the clock run.  Each case prints one "wait:" line.
 */
#include <ntddk.h>

#define MS(n) ((LONGLONG)(n) * -10000)

static KEVENT Notification, Synchronization;
static KSEMAPHORE Semaphore;
static KMUTEX Mutex;
static KTIMER Timer;
static KDPC SetterDpc;
static LONG DpcRuns;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD WaitUnload;
KDEFERRED_ROUTINE SetEventDpc;

VOID SetEventDpc(PKDPC Dpc, PVOID Context, PVOID Argument1, PVOID Argument2)
{
    UNREFERENCED_PARAMETER(Dpc);
    UNREFERENCED_PARAMETER(Argument1);
    UNREFERENCED_PARAMETER(Argument2);
    DpcRuns++;
    KeSetEvent((PKEVENT)Context, IO_NO_INCREMENT, FALSE);
}

static NTSTATUS WaitFor(PVOID Object, LONGLONG Timeout)
{
    LARGE_INTEGER timeout;
    timeout.QuadPart = Timeout;
    return KeWaitForSingleObject(Object, Executive, KernelMode, FALSE, &timeout);
}

static VOID Events(VOID)
{
    LARGE_INTEGER due;
    NTSTATUS first, zero, timed, stays;
    LONG previous, reset;
    ULONGLONG start, waited;

    KeInitializeEvent(&Notification, NotificationEvent, FALSE);
    zero = WaitFor(&Notification, 0);
    start = KeQueryInterruptTime();
    timed = WaitFor(&Notification, MS(2));
    waited = KeQueryInterruptTime() - start;
    KeInitializeTimer(&Timer);
    KeInitializeDpc(&SetterDpc, SetEventDpc, &Notification);
    due.QuadPart = MS(5);
    KeSetTimer(&Timer, due, &SetterDpc);
    first = KeWaitForSingleObject(&Notification, Executive, KernelMode, FALSE, NULL);
    stays = WaitFor(&Notification, 0);
    previous = KeSetEvent(&Notification, IO_NO_INCREMENT, FALSE);
    reset = KeResetEvent(&Notification);
    DbgPrint("wait: notification zero=%08lx timed=%08lx waited2ms=%u by_dpc=%08lx dpc=%ld stays=%08lx "
             "previous=%ld reset=%ld state=%ld\n", zero, timed, waited >= 20000 && waited < 50000, first, DpcRuns,
             stays, previous, reset, KeReadStateEvent(&Notification));

    KeInitializeEvent(&Synchronization, SynchronizationEvent, TRUE);
    first = WaitFor(&Synchronization, 0);
    zero = WaitFor(&Synchronization, 0);
    KeSetEvent(&Synchronization, IO_NO_INCREMENT, FALSE);
    KeClearEvent(&Synchronization);
    timed = WaitFor(&Synchronization, MS(1));
    DbgPrint("wait: synchronization first=%08lx again=%08lx cleared=%08lx state=%ld\n", first, zero, timed,
             KeReadStateEvent(&Synchronization));
}

static VOID Semaphores(VOID)
{
    NTSTATUS empty, taken, raised = STATUS_SUCCESS;
    LONG r1, r2;

    KeInitializeSemaphore(&Semaphore, 0, 2);
    empty = WaitFor(&Semaphore, MS(1));
    r1 = KeReleaseSemaphore(&Semaphore, IO_NO_INCREMENT, 1, FALSE);
    r2 = KeReleaseSemaphore(&Semaphore, IO_NO_INCREMENT, 1, FALSE);
    __try {
        KeReleaseSemaphore(&Semaphore, IO_NO_INCREMENT, 1, FALSE);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        raised = GetExceptionCode();
    }
    taken = WaitFor(&Semaphore, 0);
    DbgPrint("wait: semaphore empty=%08lx released=%ld,%ld over_limit=%08lx taken=%08lx count=%ld\n", empty, r1,
             r2, raised, taken, KeReadStateSemaphore(&Semaphore));
}

static VOID Mutexes(VOID)
{
    NTSTATUS first, recursive, raised = STATUS_SUCCESS;
    LONG held, r1, r2;

    KeInitializeMutex(&Mutex, 0);
    first = KeWaitForSingleObject(&Mutex, Executive, KernelMode, FALSE, NULL);
    recursive = WaitFor(&Mutex, 0);
    held = KeReadStateMutex(&Mutex);
    r1 = KeReleaseMutex(&Mutex, FALSE);
    r2 = KeReleaseMutex(&Mutex, FALSE);
    __try {
        KeReleaseMutex(&Mutex, FALSE);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        raised = GetExceptionCode();
    }
    DbgPrint("wait: mutex first=%08lx recursive=%08lx held=%ld released=%ld,%ld free=%ld not_owned=%08lx\n",
             first, recursive, held, r1, r2, KeReadStateMutex(&Mutex), raised);
}

static VOID Multiple(VOID)
{
    PVOID objects[2];
    LARGE_INTEGER zero, due;
    NTSTATUS any, all_missing, all, any_late;

    zero.QuadPart = 0;
    KeInitializeEvent(&Synchronization, SynchronizationEvent, FALSE);
    KeInitializeSemaphore(&Semaphore, 1, 1);
    objects[0] = &Synchronization;
    objects[1] = &Semaphore;
    any = KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, &zero, NULL);
    KeReleaseSemaphore(&Semaphore, IO_NO_INCREMENT, 1, FALSE);
    all_missing = KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, &zero, NULL);
    DbgPrint("wait: multiple any=%08lx all_missing=%08lx kept=%ld\n", any, all_missing,
             KeReadStateSemaphore(&Semaphore));
    KeSetEvent(&Synchronization, IO_NO_INCREMENT, FALSE);
    all = KeWaitForMultipleObjects(2, objects, WaitAll, Executive, KernelMode, FALSE, &zero, NULL);
    KeSetTimer(&Timer, (due.QuadPart = MS(3), due), &SetterDpc);
    KeInitializeEvent(&Notification, NotificationEvent, FALSE);
    objects[1] = &Notification;
    any_late = KeWaitForMultipleObjects(2, objects, WaitAny, Executive, KernelMode, FALSE, NULL, NULL);
    DbgPrint("wait: multiple all=%08lx event=%ld semaphore=%ld any_by_dpc=%08lx\n", all,
             KeReadStateEvent(&Synchronization), KeReadStateSemaphore(&Semaphore), any_late);
}

static VOID Delay(VOID)
{
    LARGE_INTEGER interval, due;
    ULONGLONG start, waited;
    LONG before = DpcRuns;

    KeInitializeEvent(&Notification, NotificationEvent, FALSE);
    due.QuadPart = MS(1);
    KeSetTimer(&Timer, due, &SetterDpc);
    interval.QuadPart = MS(4);
    start = KeQueryInterruptTime();
    KeDelayExecutionThread(KernelMode, FALSE, &interval);
    waited = KeQueryInterruptTime() - start;
    DbgPrint("wait: delay waited4ms=%u dpc_ran=%ld event=%ld\n", waited >= 40000 && waited < 100000,
             DpcRuns - before, KeReadStateEvent(&Notification));
}

VOID WaitUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    DbgPrint("wait: unload timer set=%u\n", KeCancelTimer(&Timer));
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(RegistryPath);
    DriverObject->DriverUnload = WaitUnload;
    Events();
    Semaphores();
    Mutexes();
    Multiple();
    Delay();
    DbgPrint("wait: done\n");
    return STATUS_SUCCESS;
}
