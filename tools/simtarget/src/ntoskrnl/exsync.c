/*
 * exsync.c - critical and guarded regions, and fast mutexes.
 *
 * The simulated kernel delivers no APCs, so a critical region (normal kernel APCs
 * disabled) and a guarded region (all APCs disabled) only count: KTHREAD's
 * KernelApcDisable and SpecialApcDisable (Windows 7 x64 offsets 0x1C4 and 0x1C6, the
 * fields debuggers show), decremented on entry and incremented on exit as Windows does,
 * so KeAreApcsDisabled answers as documented.  Leaving a region that was not entered
 * is bug check APC_INDEX_MISMATCH (0x1).
 *
 * Fast mutexes use the WDK's FAST_MUTEX layout, initialised by the header's inline
 * ExInitializeFastMutex (Count = FM_LOCK_BIT when free).  ExAcquireFastMutex raises to
 * APC_LEVEL and keeps the old IRQL in the mutex, waiting (letting other threads run,
 * thread.c) while another thread owns it; ExReleaseFastMutex gives it up and returns to
 * that IRQL; ExTryToAcquireFastMutex never waits.  The Unsafe variants leave IRQL alone
 * (the caller is in a critical region or at APC_LEVEL).  A thread acquiring a fast
 * mutex it already owns would wait forever on Windows; here it is reported at once as
 * the deadlock it is, with bug check MUTEX_ALREADY_OWNED (0xBF): (mutex, thread, 0).
 *
 * Guarded mutexes (KGUARDED_MUTEX: the same Count, Owner and Contention, then a gate)
 * work the same way, but acquiring one enters a guarded region instead of raising
 * IRQL, and releasing it leaves the region; callers are at IRQL <= APC_LEVEL.
 */
#include "ksimrt.h"

#define ET_KERNEL_APC_DISABLE 0x1C4
#define ET_SPECIAL_APC_DISABLE 0x1C6
#define APC_INDEX_MISMATCH 0x00000001
#define MUTEX_ALREADY_OWNED 0x000000BF
#define FM_LOCK_BIT 0x1
#define APC_LEVEL 1
#define FIELD(p, off, type) (*(type *)((PUCHAR)(p) + (off)))

typedef struct _FAST_MUTEX {
    LONG volatile Count;
    PVOID Owner;
    ULONG Contention;
    KEVENT Event;
    ULONG OldIrql;
} FAST_MUTEX, *PFAST_MUTEX;
STATIC_ASSERT(sizeof(FAST_MUTEX) == 0x38);

typedef struct _KGUARDED_MUTEX {
    LONG volatile Count;
    PVOID Owner;
    ULONG Contention;
    DISPATCHER_HEADER Gate;
    ULONG CombinedApcDisable;
} KGUARDED_MUTEX, *PKGUARDED_MUTEX;
STATIC_ASSERT(sizeof(KGUARDED_MUTEX) == 0x38);
STATIC_ASSERT(FIELD_OFFSET(KGUARDED_MUTEX, Contention) == FIELD_OFFSET(FAST_MUTEX, Contention));

VOID KiSchedule(VOID);
PVOID NTAPI KeGetCurrentThread(VOID);

/* ---- Critical and guarded regions ---- */

static VOID KiEnterRegion(ULONG Offset) { FIELD(KeGetCurrentThread(), Offset, SHORT)--; }

static VOID KiLeaveRegion(ULONG Offset)
{
    PUCHAR thread = KeGetCurrentThread();
    if (FIELD(thread, Offset, SHORT) >= 0)
        KeBugCheckEx(APC_INDEX_MISMATCH, 0, 0, (ULONG_PTR)FIELD(thread, Offset, SHORT), 0);
    FIELD(thread, Offset, SHORT)++;
}

VOID NTAPI KeEnterCriticalRegion(VOID) { KiEnterRegion(ET_KERNEL_APC_DISABLE); }
VOID NTAPI KeLeaveCriticalRegion(VOID) { KiLeaveRegion(ET_KERNEL_APC_DISABLE); }
VOID NTAPI KeEnterGuardedRegion(VOID) { KiEnterRegion(ET_SPECIAL_APC_DISABLE); }
VOID NTAPI KeLeaveGuardedRegion(VOID) { KiLeaveRegion(ET_SPECIAL_APC_DISABLE); }

BOOLEAN NTAPI KeAreApcsDisabled(VOID)
{
    PUCHAR thread = KeGetCurrentThread();
    return FIELD(thread, ET_KERNEL_APC_DISABLE, SHORT) != 0 || FIELD(thread, ET_SPECIAL_APC_DISABLE, SHORT) != 0
        || KeGetCurrentIrql() >= APC_LEVEL;
}

BOOLEAN NTAPI KeAreAllApcsDisabled(VOID)
{
    return FIELD(KeGetCurrentThread(), ET_SPECIAL_APC_DISABLE, SHORT) != 0 || KeGetCurrentIrql() >= APC_LEVEL;
}

/* ---- Fast mutexes ---- */

static VOID ExpTakeFastMutex(PFAST_MUTEX Mutex)
{
    PVOID thread = KeGetCurrentThread();
    if (!(Mutex->Count & FM_LOCK_BIT)) {
        if (Mutex->Owner == thread)
            KeBugCheckEx(MUTEX_ALREADY_OWNED, (ULONG_PTR)Mutex, (ULONG_PTR)thread, 0, 0);
        Mutex->Contention++;
        while (!(Mutex->Count & FM_LOCK_BIT))
            KiSchedule();
    }
    Mutex->Count &= ~FM_LOCK_BIT;
    Mutex->Owner = thread;
}

VOID ExAcquireFastMutex(PFAST_MUTEX Mutex)
{
    KIRQL old = KfRaiseIrql(APC_LEVEL);
    ExpTakeFastMutex(Mutex);
    Mutex->OldIrql = old;
}

VOID ExReleaseFastMutex(PFAST_MUTEX Mutex)
{
    KIRQL old = (KIRQL)Mutex->OldIrql;
    Mutex->Owner = NULL;
    Mutex->Count |= FM_LOCK_BIT;
    KeLowerIrql(old);
}

BOOLEAN ExTryToAcquireFastMutex(PFAST_MUTEX Mutex)
{
    KIRQL old;
    if (!(Mutex->Count & FM_LOCK_BIT))
        return FALSE;
    old = KfRaiseIrql(APC_LEVEL);
    ExpTakeFastMutex(Mutex);
    Mutex->OldIrql = old;
    return TRUE;
}

VOID ExAcquireFastMutexUnsafe(PFAST_MUTEX Mutex) { ExpTakeFastMutex(Mutex); }

VOID ExReleaseFastMutexUnsafe(PFAST_MUTEX Mutex)
{
    Mutex->Owner = NULL;
    Mutex->Count |= FM_LOCK_BIT;
}

/* ---- Guarded mutexes ---- */

VOID NTAPI KeInitializeGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    Mutex->Count = FM_LOCK_BIT;
    Mutex->Owner = NULL;
    Mutex->Contention = 0;
    Mutex->Gate.Type = 7;               /* GateObject */
    Mutex->Gate.Absolute = Mutex->Gate.Inserted = 0;
    Mutex->Gate.Size = sizeof(DISPATCHER_HEADER) / sizeof(LONG);
    Mutex->Gate.SignalState = 0;
    Mutex->Gate.WaitListHead.Flink = Mutex->Gate.WaitListHead.Blink = &Mutex->Gate.WaitListHead;
    Mutex->CombinedApcDisable = 0;
}

VOID NTAPI KeAcquireGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    KeEnterGuardedRegion();
    ExpTakeFastMutex((PFAST_MUTEX)Mutex);
}

VOID NTAPI KeReleaseGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    Mutex->Owner = NULL;
    Mutex->Count |= FM_LOCK_BIT;
    KeLeaveGuardedRegion();
}

BOOLEAN NTAPI KeTryToAcquireGuardedMutex(PKGUARDED_MUTEX Mutex)
{
    if (!(Mutex->Count & FM_LOCK_BIT))
        return FALSE;
    KeEnterGuardedRegion();
    ExpTakeFastMutex((PFAST_MUTEX)Mutex);
    return TRUE;
}

VOID NTAPI KeAcquireGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex) { ExpTakeFastMutex((PFAST_MUTEX)Mutex); }

VOID NTAPI KeReleaseGuardedMutexUnsafe(PKGUARDED_MUTEX Mutex)
{
    Mutex->Owner = NULL;
    Mutex->Count |= FM_LOCK_BIT;
}
