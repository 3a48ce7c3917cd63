/*
 * ksimrt.h - structured exception handling, the dispatcher objects of the scheduler
 * and the I/O manager additions of the simulated kernel (except.c, sched.c,
 * iomgr2.c, crt.c).
 *
 * Layouts are the Windows x64 ones a driver sees through wdm.h: EXCEPTION_RECORD,
 * CONTEXT (0x4D0 bytes), RUNTIME_FUNCTION, DISPATCHER_CONTEXT, KDPC (0x40), KTIMER
 * (0x40), KSEMAPHORE (0x20), KMUTANT (0x38), IO_REMOVE_LOCK, IO_CSQ, FILE_OBJECT.
 * Only the fields this kernel uses are named.
 */
#ifndef KSIM_KSIMRT_H
#define KSIM_KSIMRT_H

#include "ki.h"

/* ---- Exceptions ---- */
#define EXCEPTION_NONCONTINUABLE 0x01
#define EXCEPTION_UNWINDING      0x02
#define EXCEPTION_EXIT_UNWIND    0x04
#define EXCEPTION_TARGET_UNWIND  0x20
#define EXCEPTION_COLLIDED_UNWIND 0x40
#define EXCEPTION_UNWIND (EXCEPTION_UNWINDING | EXCEPTION_EXIT_UNWIND | EXCEPTION_TARGET_UNWIND | \
                          EXCEPTION_COLLIDED_UNWIND)
#define EXCEPTION_MAXIMUM_PARAMETERS 15
#define EXCEPTION_EXECUTE_HANDLER 1
#define EXCEPTION_CONTINUE_SEARCH 0
#define EXCEPTION_CONTINUE_EXECUTION (-1)

#ifndef STATUS_DATATYPE_MISALIGNMENT
#define STATUS_DATATYPE_MISALIGNMENT      ((NTSTATUS)0x80000002L)
#endif
#ifndef STATUS_UNWIND
#define STATUS_UNWIND                     ((NTSTATUS)0xC0000027L)
#endif
#ifndef STATUS_INVALID_DISPOSITION
#define STATUS_INVALID_DISPOSITION        ((NTSTATUS)0xC0000026L)
#endif
#ifndef STATUS_NONCONTINUABLE_EXCEPTION
#define STATUS_NONCONTINUABLE_EXCEPTION   ((NTSTATUS)0xC0000025L)
#endif
#ifndef STATUS_INTEGER_DIVIDE_BY_ZERO
#define STATUS_INTEGER_DIVIDE_BY_ZERO     ((NTSTATUS)0xC0000094L)
#endif
#ifndef STATUS_ILLEGAL_INSTRUCTION
#define STATUS_ILLEGAL_INSTRUCTION        ((NTSTATUS)0xC000001DL)
#endif
#ifndef STATUS_PRIVILEGED_INSTRUCTION
#define STATUS_PRIVILEGED_INSTRUCTION     ((NTSTATUS)0xC0000096L)
#endif
#ifndef STATUS_TIMEOUT
#define STATUS_TIMEOUT                    ((NTSTATUS)0x00000102L)
#endif
#ifndef STATUS_ALERTED
#define STATUS_ALERTED                    ((NTSTATUS)0x00000101L)
#endif
#ifndef STATUS_USER_APC
#define STATUS_USER_APC                   ((NTSTATUS)0x000000C0L)
#endif
#ifndef STATUS_WAIT_0
#define STATUS_WAIT_0                     ((NTSTATUS)0x00000000L)
#endif
#ifndef STATUS_ABANDONED_WAIT_0
#define STATUS_ABANDONED_WAIT_0           ((NTSTATUS)0x00000080L)
#endif
#ifndef STATUS_DELETE_PENDING
#define STATUS_DELETE_PENDING             ((NTSTATUS)0xC0000056L)
#endif
#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED                  ((NTSTATUS)0xC0000120L)
#endif
#ifndef STATUS_OBJECT_NAME_NOT_FOUND
#define STATUS_OBJECT_NAME_NOT_FOUND      ((NTSTATUS)0xC0000034L)
#endif
#ifndef STATUS_BUFFER_TOO_SMALL
#define STATUS_BUFFER_TOO_SMALL           ((NTSTATUS)0xC0000023L)
#endif
#ifndef STATUS_INVALID_BUFFER_SIZE
#define STATUS_INVALID_BUFFER_SIZE        ((NTSTATUS)0xC0000206L)
#endif
#ifndef STATUS_SEMAPHORE_LIMIT_EXCEEDED
#define STATUS_SEMAPHORE_LIMIT_EXCEEDED   ((NTSTATUS)0xC0000047L)
#endif
#ifndef STATUS_MUTANT_NOT_OWNED
#define STATUS_MUTANT_NOT_OWNED           ((NTSTATUS)0xC0000046L)
#endif
#ifndef STATUS_NOT_SUPPORTED
#define STATUS_NOT_SUPPORTED              ((NTSTATUS)0xC00000BBL)
#endif

typedef struct _EXCEPTION_RECORD {
    NTSTATUS ExceptionCode;
    ULONG ExceptionFlags;
    struct _EXCEPTION_RECORD *ExceptionRecord;
    PVOID ExceptionAddress;
    ULONG NumberParameters;
    ULONG Pad0;
    ULONG_PTR ExceptionInformation[EXCEPTION_MAXIMUM_PARAMETERS];
} EXCEPTION_RECORD, *PEXCEPTION_RECORD;
STATIC_ASSERT(sizeof(EXCEPTION_RECORD) == 0x98);

typedef struct __declspec(align(16)) _M128A { ULONG64 Low; LONG64 High; } M128A;

typedef struct __declspec(align(16)) _CONTEXT {
    ULONG64 PHome[6];                 /* 0x00 */
    ULONG ContextFlags;               /* 0x30 */
    ULONG MxCsr;                      /* 0x34 */
    USHORT SegCs, SegDs, SegEs, SegFs, SegGs, SegSs; /* 0x38 */
    ULONG EFlags;                     /* 0x44 */
    ULONG64 Dr0, Dr1, Dr2, Dr3, Dr6, Dr7; /* 0x48 */
    ULONG64 Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi; /* 0x78 */
    ULONG64 R8, R9, R10, R11, R12, R13, R14, R15;   /* 0xB8 */
    ULONG64 Rip;                      /* 0xF8 */
    UCHAR FltHeader[0xA0];            /* 0x100: XMM_SAVE_AREA32 up to its XMM registers */
    M128A Xmm[16];                    /* 0x1A0 */
    UCHAR FltTail[0x60];              /* 0x2A0 */
    M128A VectorRegister[26];         /* 0x300 */
    ULONG64 VectorControl, DebugControl, LastBranchToRip, LastBranchFromRip,
        LastExceptionToRip, LastExceptionFromRip; /* 0x4A0 */
} CONTEXT, *PCONTEXT;
STATIC_ASSERT(sizeof(CONTEXT) == 0x4D0);
STATIC_ASSERT(FIELD_OFFSET(CONTEXT, Rip) == 0xF8);
STATIC_ASSERT(FIELD_OFFSET(CONTEXT, Xmm) == 0x1A0);
#define CONTEXT_AMD64 0x00100000
#define CONTEXT_FULL (CONTEXT_AMD64 | 0xB)

typedef struct _EXCEPTION_POINTERS { PEXCEPTION_RECORD ExceptionRecord; PCONTEXT ContextRecord; }
    EXCEPTION_POINTERS, *PEXCEPTION_POINTERS;

typedef struct _RUNTIME_FUNCTION { ULONG BeginAddress, EndAddress, UnwindData; }
    RUNTIME_FUNCTION, *PRUNTIME_FUNCTION;

typedef enum _EXCEPTION_DISPOSITION {
    ExceptionContinueExecution, ExceptionContinueSearch, ExceptionNestedException, ExceptionCollidedUnwind
} EXCEPTION_DISPOSITION;

struct _DISPATCHER_CONTEXT;
typedef EXCEPTION_DISPOSITION (*PEXCEPTION_ROUTINE)(PEXCEPTION_RECORD, PVOID, PCONTEXT,
                                                    struct _DISPATCHER_CONTEXT *);

typedef struct _DISPATCHER_CONTEXT {
    ULONG64 ControlPc;
    ULONG64 ImageBase;
    PRUNTIME_FUNCTION FunctionEntry;
    ULONG64 EstablisherFrame;
    ULONG64 TargetIp;
    PCONTEXT ContextRecord;
    PEXCEPTION_ROUTINE LanguageHandler;
    PVOID HandlerData;
    PVOID HistoryTable;
    ULONG ScopeIndex;
    ULONG Fill0;
} DISPATCHER_CONTEXT, *PDISPATCHER_CONTEXT;

#define UNW_FLAG_NHANDLER 0
#define UNW_FLAG_EHANDLER 1
#define UNW_FLAG_UHANDLER 2
#define UNW_FLAG_CHAININFO 4

PRUNTIME_FUNCTION NTAPI RtlLookupFunctionEntry(ULONG64 ControlPc, PULONG64 ImageBase, PVOID HistoryTable);
PEXCEPTION_ROUTINE NTAPI RtlVirtualUnwind(ULONG HandlerType, ULONG64 ImageBase, ULONG64 ControlPc,
    PRUNTIME_FUNCTION FunctionEntry, PCONTEXT ContextRecord, PVOID *HandlerData, PULONG64 EstablisherFrame,
    PVOID ContextPointers);
BOOLEAN NTAPI RtlDispatchException(PEXCEPTION_RECORD ExceptionRecord, PCONTEXT ContextRecord);
VOID NTAPI RtlUnwindEx(PVOID TargetFrame, PVOID TargetIp, PEXCEPTION_RECORD ExceptionRecord, PVOID ReturnValue,
    PCONTEXT ContextRecord, PVOID HistoryTable);
VOID NTAPI RtlCaptureContext(PCONTEXT ContextRecord);
DECLSPEC_NORETURN VOID NTAPI RtlRestoreContext(PCONTEXT ContextRecord, PEXCEPTION_RECORD ExceptionRecord);
VOID NTAPI RtlRaiseException(PEXCEPTION_RECORD ExceptionRecord);
DECLSPEC_NORETURN VOID NTAPI ExRaiseStatus(NTSTATUS Status);
/* Hands a CPU fault to the exception dispatcher; returns only when no handler took it. */
VOID KiDispatchFault(NTSTATUS Code, ULONG Count, ULONG64 P0, ULONG64 P1, PCONTEXT Context);
extern ULONG64 MmUserProbeAddress;

/* ---- Dispatcher objects (x64 layouts) ---- */
#define KOBJ_EVENT_NOTIFICATION 0
#define KOBJ_EVENT_SYNCHRONIZATION 1
#define KOBJ_MUTANT 2
#define KOBJ_PROCESS 3
#define KOBJ_SEMAPHORE 5
#define KOBJ_THREAD 6
#define KOBJ_TIMER_NOTIFICATION 8
#define KOBJ_TIMER_SYNCHRONIZATION 9

typedef struct _KSEMAPHORE { DISPATCHER_HEADER Header; LONG Limit; LONG Pad0; } KSEMAPHORE, *PKSEMAPHORE;
STATIC_ASSERT(sizeof(KSEMAPHORE) == 0x20);

typedef struct _KMUTANT {
    DISPATCHER_HEADER Header;
    LIST_ENTRY MutantListEntry;
    PVOID OwnerThread;
    BOOLEAN Abandoned;
    UCHAR ApcDisable;
    UCHAR Pad0[6];
} KMUTANT, *PKMUTANT, KMUTEX, *PKMUTEX;
STATIC_ASSERT(sizeof(KMUTANT) == 0x38);

struct _KDPC;
typedef VOID (NTAPI *PKDEFERRED_ROUTINE)(struct _KDPC *, PVOID, PVOID, PVOID);
typedef struct _KDPC {
    UCHAR Type, Importance;
    USHORT Number;
    ULONG Pad0;
    LIST_ENTRY DpcListEntry;          /* 0x08 */
    PKDEFERRED_ROUTINE DeferredRoutine; /* 0x18 */
    PVOID DeferredContext;            /* 0x20 */
    PVOID SystemArgument1;            /* 0x28 */
    PVOID SystemArgument2;            /* 0x30 */
    PVOID DpcData;                    /* 0x38: non-NULL while queued */
} KDPC, *PKDPC;
STATIC_ASSERT(sizeof(KDPC) == 0x40);

typedef struct _KTIMER {
    DISPATCHER_HEADER Header;         /* 0x00 */
    ULONG64 DueTime;                  /* 0x18: interrupt time it expires at */
    LIST_ENTRY TimerListEntry;        /* 0x20 */
    PKDPC Dpc;                        /* 0x30 */
    ULONG Processor;                  /* 0x38 */
    LONG Period;                      /* 0x3C: milliseconds */
} KTIMER, *PKTIMER;
STATIC_ASSERT(sizeof(KTIMER) == 0x40);

typedef enum _WAIT_TYPE { WaitAll, WaitAny } WAIT_TYPE;
typedef enum _TIMER_TYPE { NotificationTimer, SynchronizationTimer } TIMER_TYPE;

#endif
