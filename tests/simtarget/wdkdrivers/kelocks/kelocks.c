/*
 * kelocks.sys - critical and guarded regions, fast and guarded mutexes, remove locks,
 * work items and swprintf_s used as the WDK documents them: a fast mutex held across a
 * delay while a second thread waits for it, a guarded mutex in a guarded region, a
 * remove lock held by a thread while IoReleaseRemoveLockAndWait waits for it, a work
 * item queued from a DPC running at PASSIVE_LEVEL in another thread, and wide
 * formatting with its size rules.  Each case prints one "locks:" line.
 */
#include <ntddk.h>

#define MS(n) ((LONGLONG)(n) * -10000)
#define LOCK_TAG 'kcoL'

__declspec(dllimport) int __cdecl swprintf_s(wchar_t *Buffer, size_t SizeInWords, const wchar_t *Format, ...);

static FAST_MUTEX Mutex;
static IO_REMOVE_LOCK RemoveLock;
static KEVENT WorkDone, HolderReady;
static PIO_WORKITEM WorkItem;
static KDPC QueueDpc;
static LONG Trace[8];
static LONG TraceCount;
static KIRQL WorkIrql;
static BOOLEAN WorkOtherThread;
static PVOID WorkDevice, WorkContext;
static HANDLE MainThread;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD LocksUnload;
KSTART_ROUTINE MutexHolder, MutexWaiter, LockHolder;
KDEFERRED_ROUTINE QueueFromDpc;
IO_WORKITEM_ROUTINE Work;

static VOID Delay(LONG Milliseconds)
{
    LARGE_INTEGER interval;
    interval.QuadPart = MS(Milliseconds);
    KeDelayExecutionThread(KernelMode, FALSE, &interval);
}

static VOID Regions(VOID)
{
    BOOLEAN before, critical, guarded, after;
    before = KeAreApcsDisabled();
    KeEnterCriticalRegion();
    critical = KeAreApcsDisabled();
    KeEnterGuardedRegion();
    guarded = KeAreAllApcsDisabled();
    KeLeaveGuardedRegion();
    KeLeaveCriticalRegion();
    after = KeAreApcsDisabled();
    DbgPrint("locks: regions before=%u critical=%u guarded=%u after=%u\n", before, critical, guarded, after);
}

VOID MutexHolder(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    ExAcquireFastMutex(&Mutex);
    Trace[TraceCount++] = 'h';
    KeSetEvent(&HolderReady, IO_NO_INCREMENT, FALSE);
    Delay(3);                            /* the waiter runs meanwhile and must not get in */
    Trace[TraceCount++] = 'r';
    ExReleaseFastMutex(&Mutex);
}

VOID MutexWaiter(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    KeWaitForSingleObject(&HolderReady, Executive, KernelMode, FALSE, NULL);
    Trace[TraceCount++] = 'w';
    ExAcquireFastMutex(&Mutex);
    Trace[TraceCount++] = (KeGetCurrentIrql() == APC_LEVEL) ? 'a' : '?';
    ExReleaseFastMutex(&Mutex);
}

static VOID Join(PKSTART_ROUTINE Routine, PVOID *Object)
{
    HANDLE handle;
    if (NT_SUCCESS(PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, NULL, NULL, NULL, Routine, NULL))) {
        ObReferenceObjectByHandle(handle, SYNCHRONIZE, NULL, KernelMode, Object, NULL);
        ZwClose(handle);
    }
}

static VOID FastMutexes(VOID)
{
    PVOID threads[2];
    KIRQL inside, after;
    BOOLEAN tried, busy;
    char order[8];
    LONG i;

    ExInitializeFastMutex(&Mutex);
    ExAcquireFastMutex(&Mutex);
    inside = KeGetCurrentIrql();
    ExReleaseFastMutex(&Mutex);
    after = KeGetCurrentIrql();
    tried = ExTryToAcquireFastMutex(&Mutex);
    busy = FALSE;
    ExReleaseFastMutex(&Mutex);

    KeInitializeEvent(&HolderReady, NotificationEvent, FALSE);
    Join(MutexHolder, &threads[0]);
    Join(MutexWaiter, &threads[1]);
    KeWaitForSingleObject(&HolderReady, Executive, KernelMode, FALSE, NULL);
    busy = !ExTryToAcquireFastMutex(&Mutex);
    KeWaitForMultipleObjects(2, threads, WaitAll, Executive, KernelMode, FALSE, NULL, NULL);
    ObDereferenceObject(threads[0]);
    ObDereferenceObject(threads[1]);
    for (i = 0; i < TraceCount && i < 7; i++)
        order[i] = (char)Trace[i];
    order[i] = 0;
    DbgPrint("locks: fast mutex inside=%u after=%u tried=%u busy=%u order=%s contention=%lu\n", (unsigned)inside,
             (unsigned)after, tried, busy, order, Mutex.Contention);
}

static VOID GuardedMutexes(VOID)
{
    KGUARDED_MUTEX guarded;
    BOOLEAN guarded_inside, other_try, after, tried;
    KIRQL irql;

    KeInitializeGuardedMutex(&guarded);
    KeAcquireGuardedMutex(&guarded);
    guarded_inside = KeAreAllApcsDisabled();
    irql = KeGetCurrentIrql();
    other_try = KeTryToAcquireGuardedMutex(&guarded) == FALSE ? 0 : 1;
    KeReleaseGuardedMutex(&guarded);
    after = KeAreAllApcsDisabled();
    tried = KeTryToAcquireGuardedMutex(&guarded);
    KeReleaseGuardedMutex(&guarded);
    DbgPrint("locks: guarded mutex guarded=%u irql=%u busy_try=%u after=%u tried=%u\n", guarded_inside,
             (unsigned)irql, other_try, after, tried);
}

VOID LockHolder(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    IoAcquireRemoveLock(&RemoveLock, (PVOID)2);
    KeSetEvent(&HolderReady, IO_NO_INCREMENT, FALSE);
    Delay(3);
    Trace[TraceCount++] = 'R';
    IoReleaseRemoveLock(&RemoveLock, (PVOID)2);
}

static VOID RemoveLocks(VOID)
{
    PVOID holder;
    NTSTATUS first, late;

    IoInitializeRemoveLock(&RemoveLock, LOCK_TAG, 0, 0);
    first = IoAcquireRemoveLock(&RemoveLock, (PVOID)1);
    TraceCount = 0;
    KeInitializeEvent(&HolderReady, NotificationEvent, FALSE);
    Join(LockHolder, &holder);
    KeWaitForSingleObject(&HolderReady, Executive, KernelMode, FALSE, NULL);
    IoReleaseRemoveLockAndWait(&RemoveLock, (PVOID)1);
    Trace[TraceCount++] = 'W';
    late = IoAcquireRemoveLock(&RemoveLock, (PVOID)3);
    KeWaitForSingleObject(holder, Executive, KernelMode, FALSE, NULL);
    ObDereferenceObject(holder);
    DbgPrint("locks: remove lock first=%08lx waited_for_holder=%u late=%08lx\n", first,
             TraceCount == 2 && Trace[0] == 'R' && Trace[1] == 'W', late);
}

VOID Work(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
    WorkIrql = KeGetCurrentIrql();
    WorkOtherThread = PsGetCurrentThreadId() != MainThread;
    WorkDevice = DeviceObject;
    WorkContext = Context;
    KeSetEvent(&WorkDone, IO_NO_INCREMENT, FALSE);
}

VOID QueueFromDpc(PKDPC Dpc, PVOID Context, PVOID Argument1, PVOID Argument2)
{
    UNREFERENCED_PARAMETER(Dpc);
    UNREFERENCED_PARAMETER(Argument1);
    UNREFERENCED_PARAMETER(Argument2);
    IoQueueWorkItem(WorkItem, Work, DelayedWorkQueue, Context);
}

static VOID WorkItems(PDEVICE_OBJECT Device)
{
    LARGE_INTEGER timeout;
    NTSTATUS waited;
    KIRQL old;

    MainThread = PsGetCurrentThreadId();
    KeInitializeEvent(&WorkDone, SynchronizationEvent, FALSE);
    WorkItem = IoAllocateWorkItem(Device);
    KeInitializeDpc(&QueueDpc, QueueFromDpc, (PVOID)0x77);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    KeInsertQueueDpc(&QueueDpc, NULL, NULL);
    KeLowerIrql(old);
    timeout.QuadPart = MS(50);
    waited = KeWaitForSingleObject(&WorkDone, Executive, KernelMode, FALSE, &timeout);
    IoFreeWorkItem(WorkItem);
    DbgPrint("locks: work item wait=%08lx irql=%u other_thread=%u device=%u context=%x\n", waited,
             (unsigned)WorkIrql, WorkOtherThread, WorkDevice == Device, (unsigned)(ULONG_PTR)WorkContext);
}

static VOID Formatting(VOID)
{
    WCHAR buffer[32], tiny[4];
    int n, too_small, bad;
    n = swprintf_s(buffer, 32, L"%s=%d %hs %x%%", L"wide", -12, "narrow", 255u);
    too_small = swprintf_s(tiny, 4, L"%d", 12345);
    bad = swprintf_s(buffer + 20, 0, L"x");
    DbgPrint("locks: swprintf_s n=%d text=%ws too_small=%d emptied=%u zero_size=%d\n", n, buffer, too_small,
             tiny[0] == 0, bad);
}

VOID LocksUnload(PDRIVER_OBJECT DriverObject)
{
    IoDeleteDevice(DriverObject->DeviceObject);
    DbgPrint("locks: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT device;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(RegistryPath);

    status = IoCreateDevice(DriverObject, 0, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
    if (!NT_SUCCESS(status))
        return status;
    DriverObject->DriverUnload = LocksUnload;
    Regions();
    FastMutexes();
    GuardedMutexes();
    RemoveLocks();
    WorkItems(device);
    Formatting();
    return STATUS_SUCCESS;
}
