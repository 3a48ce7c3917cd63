/*
 * sync.c - dispatcher objects and waits: semaphores, mutexes, waits on one or several
 * objects (events, semaphores, mutexes, timers) with timeouts, and delays.
 *
 * One processor: a wait that is not satisfied at once leaves the processor to the
 * clock and the other threads (thread.c's KiSchedule: due timers and DPCs at
 * DISPATCH_LEVEL, then the next thread) until an object is signalled or the timeout
 * passes on the simulated clock.  A wait nothing can satisfy lasts forever, as on Windows; the debugger can
 * still break in.  Events are initialised, set and reset in ke.c.
 *
 * Rules from the WDK documentation: a wait returns STATUS_SUCCESS (STATUS_WAIT_0 + the
 * index of the object for WaitAny) or STATUS_TIMEOUT; a zero timeout tests and returns
 * at once; a negative timeout is relative (100 ns units), a positive one an absolute
 * system time; a nonzero timeout needs IRQL <= APC_LEVEL.  Satisfying a wait resets a
 * synchronization event or timer, takes one unit of a semaphore, and gives a mutex to
 * the waiting thread (recursively: a thread may wait again on a mutex it holds).
 * WaitAll is satisfied only when every object is signalled at the same time.  More than
 * THREAD_WAIT_OBJECTS (3) objects need a caller's wait block array, more than
 * MAXIMUM_WAIT_OBJECTS (64) are refused: bug check MAXIMUM_WAIT_OBJECTS_EXCEEDED (0xC).
 * KeReleaseSemaphore past the limit raises STATUS_SEMAPHORE_LIMIT_EXCEEDED; a thread
 * that does not own a mutex releasing it raises STATUS_MUTANT_NOT_OWNED; each returns
 * the object's previous state.
 */
#include "ksimrt.h"

#define MAXIMUM_WAIT_OBJECTS_EXCEEDED 0x0000000C
#define THREAD_WAIT_OBJECTS 3
#define MAXIMUM_WAIT_OBJECTS 64

VOID KiSchedule(VOID);
ULONG64 KiDueInterruptTime(LONGLONG DueTime);
PVOID NTAPI KeGetCurrentThread(VOID);

/* ---- Semaphores and mutexes ---- */

VOID NTAPI KeInitializeSemaphore(PKSEMAPHORE Semaphore, LONG Count, LONG Limit)
{
    Semaphore->Header.Type = KOBJ_SEMAPHORE;
    Semaphore->Header.Absolute = 0;
    Semaphore->Header.Size = sizeof(KSEMAPHORE) / sizeof(LONG);
    Semaphore->Header.Inserted = 0;
    Semaphore->Header.SignalState = Count;
    Semaphore->Header.WaitListHead.Flink = Semaphore->Header.WaitListHead.Blink = &Semaphore->Header.WaitListHead;
    Semaphore->Limit = Limit;
}

LONG NTAPI KeReadStateSemaphore(PKSEMAPHORE Semaphore) { return Semaphore->Header.SignalState; }

LONG NTAPI KeReleaseSemaphore(PKSEMAPHORE Semaphore, LONG Increment, LONG Adjustment, BOOLEAN Wait)
{
    LONG old = Semaphore->Header.SignalState;
    (void)Increment; (void)Wait;
    if (Adjustment <= 0 || old + Adjustment > Semaphore->Limit || old + Adjustment < old)
        ExRaiseStatus(STATUS_SEMAPHORE_LIMIT_EXCEEDED);
    Semaphore->Header.SignalState = old + Adjustment;
    return old;
}

VOID NTAPI KeInitializeMutex(PKMUTEX Mutex, ULONG Level)
{
    (void)Level;
    Mutex->Header.Type = KOBJ_MUTANT;
    Mutex->Header.Absolute = 0;
    Mutex->Header.Size = sizeof(KMUTEX) / sizeof(LONG);
    Mutex->Header.Inserted = 0;
    Mutex->Header.SignalState = 1;
    Mutex->Header.WaitListHead.Flink = Mutex->Header.WaitListHead.Blink = &Mutex->Header.WaitListHead;
    Mutex->MutantListEntry.Flink = Mutex->MutantListEntry.Blink = NULL;
    Mutex->OwnerThread = NULL;
    Mutex->Abandoned = FALSE;
    Mutex->ApcDisable = 1;
}

LONG NTAPI KeReadStateMutex(PKMUTEX Mutex) { return Mutex->Header.SignalState; }

LONG NTAPI KeReleaseMutex(PKMUTEX Mutex, BOOLEAN Wait)
{
    LONG old = Mutex->Header.SignalState;
    (void)Wait;
    if (old > 0 || Mutex->OwnerThread != KeGetCurrentThread())
        ExRaiseStatus(STATUS_MUTANT_NOT_OWNED);
    Mutex->Header.SignalState = old + 1;
    if (Mutex->Header.SignalState == 1)
        Mutex->OwnerThread = NULL;
    return old;
}

/* ---- Waits ---- */

static BOOLEAN KiIsSignalled(DISPATCHER_HEADER *Header)
{
    if (Header->Type == KOBJ_MUTANT)
        return Header->SignalState > 0 || ((PKMUTANT)Header)->OwnerThread == KeGetCurrentThread();
    return Header->SignalState > 0;
}

static VOID KiSatisfyWait(DISPATCHER_HEADER *Header)
{
    switch (Header->Type) {
    case KOBJ_EVENT_SYNCHRONIZATION: case KOBJ_TIMER_SYNCHRONIZATION:
        Header->SignalState = 0;
        break;
    case KOBJ_SEMAPHORE:
        Header->SignalState--;
        break;
    case KOBJ_MUTANT:
        Header->SignalState--;
        ((PKMUTANT)Header)->OwnerThread = KeGetCurrentThread();
        break;
    default:                            /* notification events and timers stay signalled */
        break;
    }
}

/* STATUS_WAIT_0 + index, STATUS_SUCCESS for WaitAll, or STATUS_TIMEOUT: a satisfied
 * wait is checked first, then the clock runs until one is or the timeout passes. */
static NTSTATUS KiWait(ULONG Count, PVOID Object[], WAIT_TYPE WaitType, PLARGE_INTEGER Timeout)
{
    ULONG64 until = 0;
    ULONG i;

    if (Timeout && Timeout->QuadPart != 0)
        until = KiDueInterruptTime(Timeout->QuadPart);
    for (;;) {
        if (WaitType == WaitAny) {
            for (i = 0; i < Count; i++)
                if (KiIsSignalled(Object[i])) {
                    KiSatisfyWait(Object[i]);
                    return STATUS_WAIT_0 + i;
                }
        } else {
            for (i = 0; i < Count && KiIsSignalled(Object[i]); i++)
                ;
            if (i == Count) {
                for (i = 0; i < Count; i++)
                    KiSatisfyWait(Object[i]);
                return STATUS_SUCCESS;
            }
        }
        if (Timeout && (Timeout->QuadPart == 0 || KiQueryInterruptTime() >= until))
            return STATUS_TIMEOUT;
        KiSchedule();
    }
}

NTSTATUS NTAPI KeWaitForSingleObject(PVOID Object, ULONG WaitReason, KPROCESSOR_MODE WaitMode,
                                     BOOLEAN Alertable, PLARGE_INTEGER Timeout)
{
    (void)WaitReason; (void)WaitMode; (void)Alertable;
    return KiWait(1, &Object, WaitAny, Timeout);
}

NTSTATUS NTAPI KeWaitForMultipleObjects(ULONG Count, PVOID Object[], WAIT_TYPE WaitType, ULONG WaitReason,
                                        KPROCESSOR_MODE WaitMode, BOOLEAN Alertable, PLARGE_INTEGER Timeout,
                                        PVOID WaitBlockArray)
{
    (void)WaitReason; (void)WaitMode; (void)Alertable;
    if (Count > MAXIMUM_WAIT_OBJECTS || (Count > THREAD_WAIT_OBJECTS && !WaitBlockArray))
        KeBugCheckEx(MAXIMUM_WAIT_OBJECTS_EXCEEDED, Count, (ULONG_PTR)WaitBlockArray, 0, 0);
    return KiWait(Count, Object, WaitType, Timeout);
}

NTSTATUS NTAPI KeDelayExecutionThread(KPROCESSOR_MODE WaitMode, BOOLEAN Alertable, PLARGE_INTEGER Interval)
{
    ULONG64 until = KiDueInterruptTime(Interval->QuadPart);
    (void)WaitMode; (void)Alertable;
    while (KiQueryInterruptTime() < until)
        KiSchedule();
    return STATUS_SUCCESS;
}
