/*
 * ke.c - processor state: IRQL, spin locks, time, events, the current thread, the
 * IDT and GDT, and the handlers the machine enters for interrupts and faults.
 *
 * IRQL lives in KPCR.Irql (there is no local APIC, so no CR8).  Time comes from the
 * machine's instruction-based clock (hal.dll, KeQueryPerformanceCounter), never from
 * the host's wall clock.  Faults: at any IRQL, a page fault on an address an unloaded
 * driver occupied (and no image occupies now) is
 * DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS (0xCE; arguments: address,
 * 0 read / 1 write / 8 execute, faulting instruction, 0); any other page fault at
 * DISPATCH_LEVEL or above bug checks
 * with IRQL_NOT_LESS_OR_EQUAL (0xA) in kernel code and DRIVER_IRQL_NOT_LESS_OR_EQUAL
 * (0xD1) in driver code (arguments: address, IRQL, 0 read / 1 write / 8 execute,
 * faulting instruction); below it, a bad system address is PAGE_FAULT_IN_NONPAGED_AREA
 * (0x50), while a bad user-space address and every other CPU exception go to the
 * exception dispatcher (except.c, with the context the machine saved at the fault)
 * and end in KMODE_EXCEPTION_NOT_HANDLED (0x1E) only when no handler takes them.
 */
#include "ki.h"

#define IRQL_NOT_GREATER_OR_EQUAL 0x00000009
#define SPIN_LOCK_ALREADY_OWNED   0x0000000F
#define UNEXPECTED_KERNEL_MODE_TRAP 0x0000007F
#define STATUS_INTEGER_DIVIDE_BY_ZERO ((NTSTATUS)0xC0000094L)
#define STATUS_ILLEGAL_INSTRUCTION ((NTSTATUS)0xC000001DL)

extern ULONG KeTimeIncrement;

/* ---- IRQL ---- */

KIRQL NTAPI KeGetCurrentIrql(VOID) { return KiPcr.Irql; }

KIRQL NTAPI KfRaiseIrql(KIRQL NewIrql)
{
    KIRQL old = KiPcr.Irql;
    if (NewIrql < old)
        KeBugCheckEx(IRQL_NOT_GREATER_OR_EQUAL, old, NewIrql, 0, 0);
    KiPcr.Irql = NewIrql;
    return old;
}

VOID NTAPI KeRaiseIrql(KIRQL NewIrql, PKIRQL OldIrql) { *OldIrql = KfRaiseIrql(NewIrql); }
KIRQL NTAPI KeRaiseIrqlToDpcLevel(VOID) { return KfRaiseIrql(DISPATCH_LEVEL); }
KIRQL NTAPI KeRaiseIrqlToSynchLevel(VOID) { return KfRaiseIrql(12); }
/* Lowering below DISPATCH_LEVEL runs the DPCs queued meanwhile (sched.c). */
VOID KiDispatchPendingDpcs(VOID);
extern BOOLEAN volatile KiDpcPending;
VOID NTAPI KeLowerIrql(KIRQL NewIrql)
{
    KiPcr.Irql = NewIrql;
    if (KiDpcPending && NewIrql < DISPATCH_LEVEL)
        KiDispatchPendingDpcs();
}
VOID NTAPI KfLowerIrql(KIRQL NewIrql) { KeLowerIrql(NewIrql); }

/* ---- Spin locks: one processor, so acquiring is raising IRQL and marking the lock;
 * a lock that is already held would spin forever and is reported instead. ---- */

static VOID KiAcquireSpinLock(PKSPIN_LOCK Lock)
{
    if (*Lock & 1)
        KeBugCheckEx(SPIN_LOCK_ALREADY_OWNED, (ULONG_PTR)Lock, 0, 0, 0);
    *Lock = 1;
}

VOID NTAPI KeInitializeSpinLock(PKSPIN_LOCK Lock) { *Lock = 0; }

KIRQL NTAPI KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK Lock)
{
    KIRQL old = KfRaiseIrql(DISPATCH_LEVEL);
    KiAcquireSpinLock(Lock);
    return old;
}

KIRQL NTAPI KeAcquireSpinLockRaiseToSynch(PKSPIN_LOCK Lock)
{
    KIRQL old = KfRaiseIrql(12);
    KiAcquireSpinLock(Lock);
    return old;
}

KIRQL NTAPI KfAcquireSpinLock(PKSPIN_LOCK Lock) { return KeAcquireSpinLockRaiseToDpc(Lock); }
VOID NTAPI KeAcquireSpinLock(PKSPIN_LOCK Lock, PKIRQL OldIrql) { *OldIrql = KeAcquireSpinLockRaiseToDpc(Lock); }
VOID NTAPI KeAcquireSpinLockAtDpcLevel(PKSPIN_LOCK Lock) { KiAcquireSpinLock(Lock); }
VOID NTAPI KefAcquireSpinLockAtDpcLevel(PKSPIN_LOCK Lock) { KiAcquireSpinLock(Lock); }

BOOLEAN NTAPI KeTryToAcquireSpinLockAtDpcLevel(PKSPIN_LOCK Lock)
{
    if (*Lock & 1)
        return FALSE;
    *Lock = 1;
    return TRUE;
}

VOID NTAPI KeReleaseSpinLock(PKSPIN_LOCK Lock, KIRQL NewIrql)
{
    *Lock = 0;
    KeLowerIrql(NewIrql);
}

VOID NTAPI KfReleaseSpinLock(PKSPIN_LOCK Lock, KIRQL NewIrql) { KeReleaseSpinLock(Lock, NewIrql); }
VOID NTAPI KeReleaseSpinLockFromDpcLevel(PKSPIN_LOCK Lock) { *Lock = 0; }
VOID NTAPI KefReleaseSpinLockFromDpcLevel(PKSPIN_LOCK Lock) { *Lock = 0; }

/* ---- Time ---- */

ULONG64 KiQueryInterruptTime(VOID)
{
    return (ULONG64)KeQueryPerformanceCounter(NULL).QuadPart;
}

ULONGLONG NTAPI KeQueryInterruptTime(VOID) { return KiQueryInterruptTime(); }
ULONG NTAPI KeQueryTimeIncrement(VOID) { return KeTimeIncrement; }

VOID NTAPI KeQuerySystemTime(PLARGE_INTEGER CurrentTime)
{
    CurrentTime->QuadPart = (LONGLONG)(KiLoaderBlock->SystemTimeAtBoot + KiQueryInterruptTime());
}

VOID NTAPI KeQueryTickCount(PLARGE_INTEGER TickCount)
{
    TickCount->QuadPart = (LONGLONG)(KiQueryInterruptTime() / KeTimeIncrement);
}

/* ---- Events (waits are in sync.c) ---- */

VOID NTAPI KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State)
{
    Event->Header.Type = (UCHAR)Type;
    Event->Header.Size = sizeof(KEVENT) / sizeof(LONG);
    Event->Header.SignalState = State;
    Event->Header.WaitListHead.Flink = Event->Header.WaitListHead.Blink = &Event->Header.WaitListHead;
}

LONG NTAPI KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait)
{
    LONG old = Event->Header.SignalState;
    (void)Increment; (void)Wait;
    Event->Header.SignalState = 1;
    return old;
}

LONG NTAPI KeResetEvent(PKEVENT Event)
{
    LONG old = Event->Header.SignalState;
    Event->Header.SignalState = 0;
    return old;
}

VOID NTAPI KeClearEvent(PKEVENT Event) { Event->Header.SignalState = 0; }
LONG NTAPI KeReadStateEvent(PKEVENT Event) { return Event->Header.SignalState; }

/* ---- Current thread and process ---- */

PVOID NTAPI KeGetCurrentThread(VOID) { return KiPcr.Prcb.CurrentThread; }
PVOID NTAPI PsGetCurrentThread(VOID) { return KiPcr.Prcb.CurrentThread; }
/* The process whose context the thread runs in: KTHREAD.ApcState.Process, which the
 * simulated user program's requests attach to its process (process.c). */
PVOID NTAPI PsGetCurrentProcess(VOID) { return *(PVOID *)((PUCHAR)KiPcr.Prcb.CurrentThread + ET_APC_PROCESS); }
PVOID NTAPI IoGetCurrentProcess(VOID) { return PsGetCurrentProcess(); }
HANDLE NTAPI PsGetCurrentProcessId(VOID)
{
    return *(HANDLE *)((PUCHAR)PsGetCurrentProcess() + EP_UNIQUE_PROCESS_ID);
}
HANDLE NTAPI PsGetCurrentThreadId(VOID)
{
    return *(HANDLE *)((PUCHAR)KiPcr.Prcb.CurrentThread + ET_CID + 8);
}
ULONG NTAPI KeGetCurrentProcessorNumberEx(PVOID ProcNumber) { (void)ProcNumber; return 0; }

/* ---- Descriptor tables ---- */

__declspec(align(16)) KIDTENTRY64 KiIdt[256];
__declspec(align(16)) ULONG64 KiGdt[10] = {
    0,
    0,
    0x00209B0000000000ULL,   /* 0x10 KGDT64_R0_CODE */
    0x00CF93000000FFFFULL,   /* 0x18 KGDT64_R0_DATA */
    0x00CFFB000000FFFFULL,   /* 0x20 KGDT64_R3_CMCODE */
    0x00CFF3000000FFFFULL,   /* 0x28 KGDT64_R3_DATA */
    0x0020FB0000000000ULL,   /* 0x30 KGDT64_R3_CODE */
    0,
    0, 0                     /* 0x40 KGDT64_SYS_TSS (filled in) */
};
__declspec(align(16)) UCHAR KiTss[0x68];

#pragma pack(push, 1)
typedef struct { USHORT Limit; ULONG64 Base; } KDESCRIPTOR;
#pragma pack(pop)

VOID KiClockInterrupt(VOID);
DECLSPEC_NORETURN VOID KiDivideErrorFault(ULONG64 Arg0, ULONG64 Arg1, ULONG64 Pc, PVOID Context);
DECLSPEC_NORETURN VOID KiInvalidOpcodeFault(ULONG64 Arg0, ULONG64 Arg1, ULONG64 Pc, PVOID Context);
DECLSPEC_NORETURN VOID KiGeneralProtectionFault(ULONG64 Arg0, ULONG64 Arg1, ULONG64 Pc, PVOID Context);
DECLSPEC_NORETURN VOID KiPageFault(ULONG64 Va, ULONG64 Access, ULONG64 Pc, PVOID Context);
/* except.c: returns only when no exception handler took the fault. */
VOID KiDispatchFault(NTSTATUS Code, ULONG Count, ULONG64 P0, ULONG64 P1, PVOID Context);
extern ULONG64 MmUserProbeAddress;
DECLSPEC_NORETURN VOID KiUnexpectedInterrupt(ULONG64 Vector, ULONG64 Arg1, ULONG64 Pc);
VOID KiClockInterruptHandler(VOID);

/* The clock interrupt. */
KI_INTERRUPT_ENTRY(KiClockInterrupt, KiClockInterruptHandler);

static VOID KiSetGate(ULONG Vector, PVOID Handler)
{
    ULONG64 h = (ULONG64)Handler;
    KiIdt[Vector].OffsetLow = (USHORT)h;
    KiIdt[Vector].Selector = 0x10;
    KiIdt[Vector].Flags = 0x8E00;              /* present, DPL 0, 64-bit interrupt gate */
    KiIdt[Vector].OffsetMiddle = (USHORT)(h >> 16);
    KiIdt[Vector].OffsetHigh = (ULONG)(h >> 32);
}

VOID KiInitializeInterrupts(VOID)
{
    KDESCRIPTOR gdtr, idtr;
    ULONG64 tss = (ULONG64)KiTss;
    ULONG i;

    for (i = 0; i < 256; i++)
        KiSetGate(i, KiUnexpectedInterrupt);
    KiSetGate(KSIM_VECTOR_DIVIDE, KiDivideErrorFault);
    KiSetGate(KSIM_VECTOR_INVALID_OP, KiInvalidOpcodeFault);
    KiSetGate(KSIM_VECTOR_GP, KiGeneralProtectionFault);
    KiSetGate(KSIM_VECTOR_PAGE_FAULT, KiPageFault);
    KiSetGate(KSIM_VECTOR_CLOCK, KiClockInterrupt);

    KiGdt[8] = (sizeof(KiTss) - 1) | ((tss & 0xFFFFFF) << 16) | (0x89ULL << 40)
             | (((tss >> 24) & 0xFF) << 56);
    KiGdt[9] = tss >> 32;
    KiPcr.GdtBase = (ULONG64)KiGdt;
    KiPcr.TssBase = tss;
    KiPcr.IdtBase = KiIdt;

    gdtr.Limit = sizeof(KiGdt) - 1;
    gdtr.Base = (ULONG64)KiGdt;
    idtr.Limit = sizeof(KiIdt) - 1;
    idtr.Base = (ULONG64)KiIdt;
    __asm__ volatile("lgdt %0" : : "m"(gdtr));
    __asm__ volatile("lidt %0" : : "m"(idtr));
    /* IA32_GS_BASE: gs:[0x188] is the current thread, as drivers expect. */
    __asm__ volatile("wrmsr" : : "c"(0xC0000101UL), "a"((ULONG)(ULONG64)&KiPcr),
                     "d"((ULONG)((ULONG64)&KiPcr >> 32)));
}

/* ---- Fault handlers ---- */

static PKLDR_DATA_TABLE_ENTRY KiLoadedImageAt(ULONG64 Va)
{
    PLIST_ENTRY link;
    for (link = PsLoadedModuleList.Flink; link != &PsLoadedModuleList; link = link->Flink) {
        PKLDR_DATA_TABLE_ENTRY e = CONTAINING_RECORD(link, KLDR_DATA_TABLE_ENTRY, InLoadOrderLinks);
        if (Va - (ULONG64)e->DllBase < e->SizeOfImage)
            return e;
    }
    return NULL;
}

static BOOLEAN KiAddressInDriver(ULONG64 Pc)
{
    PKLDR_DATA_TABLE_ENTRY e = KiLoadedImageAt(Pc);
    return e && (e->Flags & LDRP_KSIM_SYSTEM_IMAGE) == 0;
}

DECLSPEC_NORETURN VOID KiPageFault(ULONG64 Va, ULONG64 Access, ULONG64 Pc, PVOID Context)
{
    KIRQL irql = KiPcr.Irql;
    /* A bad user-space address (NULL included) below DISPATCH_LEVEL is an access
     * violation the code's exception handlers may take; a bad system address is not,
     * as on Windows. */
    if (Va < MmUserProbeAddress && irql < DISPATCH_LEVEL) {
        KiDispatchFault(STATUS_ACCESS_VIOLATION, 2, Access, Va, Context);
        KeBugCheckEx(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_ACCESS_VIOLATION, Pc, Access, Va);
    }
    /* Where a driver was before its unload and no image is now: a routine, timer or
     * DPC it left registered (or code it left running) is being reached. */
    if (MiInUnloadedImage(Va) && !KiLoadedImageAt(Va))
        KeBugCheckEx(DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS, Va, Access, Pc, 0);
    if (irql >= DISPATCH_LEVEL)
        KeBugCheckEx(KiAddressInDriver(Pc) ? DRIVER_IRQL_NOT_LESS_OR_EQUAL : IRQL_NOT_LESS_OR_EQUAL,
                     Va, irql, Access, Pc);
    KeBugCheckEx(PAGE_FAULT_IN_NONPAGED_AREA, Va, Access == 8 ? 10 : Access, Pc, 0);
}

DECLSPEC_NORETURN VOID KiDivideErrorFault(ULONG64 Arg0, ULONG64 Arg1, ULONG64 Pc, PVOID Context)
{
    (void)Arg0; (void)Arg1;
    KiDispatchFault(STATUS_INTEGER_DIVIDE_BY_ZERO, 0, 0, 0, Context);
    KeBugCheckEx(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_INTEGER_DIVIDE_BY_ZERO, Pc, 0, 0);
}

DECLSPEC_NORETURN VOID KiInvalidOpcodeFault(ULONG64 Arg0, ULONG64 Arg1, ULONG64 Pc, PVOID Context)
{
    (void)Arg0; (void)Arg1;
    KiDispatchFault(STATUS_ILLEGAL_INSTRUCTION, 0, 0, 0, Context);
    KeBugCheckEx(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_ILLEGAL_INSTRUCTION, Pc, 0, 0);
}

DECLSPEC_NORETURN VOID KiGeneralProtectionFault(ULONG64 Arg0, ULONG64 Arg1, ULONG64 Pc, PVOID Context)
{
    (void)Arg1;
    KiDispatchFault(STATUS_ACCESS_VIOLATION, 2, 0, ~0ULL, Context);
    KeBugCheckEx(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_ACCESS_VIOLATION, Pc, 0, Arg0);
}

DECLSPEC_NORETURN VOID KiUnexpectedInterrupt(ULONG64 Vector, ULONG64 Arg1, ULONG64 Pc)
{
    (void)Arg1;
    KeBugCheckEx(UNEXPECTED_KERNEL_MODE_TRAP, Vector, 0, 0, Pc);
}
