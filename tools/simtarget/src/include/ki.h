/*
 * ki.h - internal interfaces of the simulated kernel: processor blocks, process and
 * thread objects, pool headers, debugger data, the loader block the machine writes,
 * the simulator device ports and the KiSimRequest commands.
 *
 * Process, thread and processor structures use the Windows 7 SP1 x64 (build 7601)
 * offsets, the build this kernel reports in its version block, so that debuggers
 * with built-in profiles for 7601 find their fields.  Only the named fields are
 * maintained; everything else reads as zero.
 */
#ifndef KSIM_KI_H
#define KSIM_KI_H

#include "ntbase.h"

/* ---- KiSimRequest: commands the machine or the debugger writes into the exported
 * ULONG KiSimRequest.  The system loop services one per tick, then writes 0 back. */
#define KSIM_REQUEST_NONE      0
#define KSIM_REQUEST_LEAK      1   /* IOCTL_TRACKDEMO_LEAK      0x222004 to every device */
#define KSIM_REQUEST_OVERWRITE 2   /* IOCTL_TRACKDEMO_OVERWRITE 0x222008 */
#define KSIM_REQUEST_STATS     3   /* IOCTL_TRACKDEMO_STATS     0x22200C */
#define KSIM_REQUEST_DUMP      4   /* IOCTL_TRACKDEMO_DUMP      0x222010 */
#define KSIM_REQUEST_VALIDATE  5   /* IOCTL_TRACKDEMO_VALIDATE  0x222014 */
#define KSIM_REQUEST_UNLOAD    6   /* unload every driver that is not a system image */
#define KSIM_REQUEST_BUGCHECK  7   /* KeBugCheckEx(MANUALLY_INITIATED_CRASH, 0, 0, 0, 0) */
#define KSIM_REQUEST_BAD_ACCESS 8  /* driver code reads KSIM_BAD_ADDRESS at DISPATCH_LEVEL:
                                      DRIVER_IRQL_NOT_LESS_OR_EQUAL (0xD1) */
#define KSIM_REQUEST_BIG_POOL  9   /* allocate KSIM_BIG_POOL_SIZE bytes of pool tagged 'Ksim'
                                      (a big-page allocation) and keep it; sent again, free it */
#define KSIM_BIG_POOL_SIZE     0x1800

#define IOCTL_TRACKDEMO_TICK      0x222000
#define IOCTL_TRACKDEMO_LEAK      0x222004
#define IOCTL_TRACKDEMO_OVERWRITE 0x222008
#define IOCTL_TRACKDEMO_STATS     0x22200C
#define IOCTL_TRACKDEMO_DUMP      0x222010
#define IOCTL_TRACKDEMO_VALIDATE  0x222014

/* The canonical, never-mapped kernel address request 8 hands to driver code as its
 * IRP stack location. */
#define KSIM_BAD_ADDRESS 0xFFFFF80BADC0DE00ULL

/* Bug check codes used here (the meanings of their parameters are Microsoft's). */
#define IRQL_NOT_LESS_OR_EQUAL          0x0000000A
#define KMODE_EXCEPTION_NOT_HANDLED     0x0000001E
#define PAGE_FAULT_IN_NONPAGED_AREA     0x00000050
#define BAD_POOL_HEADER                 0x00000019
#define BAD_POOL_CALLER                 0x000000C2
#define DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS 0x000000CE
#define DRIVER_IRQL_NOT_LESS_OR_EQUAL   0x000000D1
#define MANUALLY_INITIATED_CRASH        0x000000E2
#define SYSTEM_THREAD_EXCEPTION_NOT_HANDLED 0x0000007E

/* ---- Simulator device: I/O ports the machine emulates ---- */
#define KSIM_COM_PORT        0x3F8   /* 16550 UART kdcom polls: RBR at +0, LSR at +5 */
#define KSIM_PORT_TIME_LOW   0x5D0   /* in: interrupt time (100 ns units) low dword; latches high */
#define KSIM_PORT_TIME_HIGH  0x5D4   /* in: the latched high dword */
#define KSIM_PORT_CONTROL    0x5D8   /* out: a KSIM_CONTROL_* command, arguments in r8 and r9 */
#define KSIM_CONTROL_UNMAP_IMAGE 1   /* r9 = image base, r8 = size: the loader frees the image */
#define KSIM_CONTROL_HALT        2   /* the system stopped for good (after a bug check) */
#define KSIM_CONTROL_BOOTED      3   /* boot finished: the system loop starts */
#define KSIM_CONTROL_REBOOT      4   /* HalReturnToFirmware: the machine boots again */
#define KSIM_CONTROL_FILE        5   /* r9 = a KSIM_FILE_REQUEST (file.c) the machine carries out */

/* Interrupt vectors the machine delivers through the IDT (KPCR.IdtBase).  The
 * simulated delivery pushes only the interrupted RIP; fault handlers receive the
 * fault data as arguments (rcx, rdx, r8). */
#define KSIM_VECTOR_DIVIDE        0x00
#define KSIM_VECTOR_INVALID_OP    0x06
#define KSIM_VECTOR_GP            0x0D
#define KSIM_VECTOR_PAGE_FAULT    0x0E
#define KSIM_VECTOR_CLOCK         0xD1

/* ---- Loader block written by the machine before KiSystemStartup runs ---- */
#define KSIM_LOADER_MAGIC 0x4B53494CUL   /* 'LISK' */
#define KSIM_MAX_DRIVERS 32
#define KSIM_MAX_MEMORY_RUNS 16
typedef struct _KSIM_LOADER_BLOCK {
    ULONG Magic;
    ULONG Version;
    ULONG64 Seed;
    ULONG64 PoolStart;               /* nonpaged pool virtual range */
    ULONG64 PoolSize;
    ULONG64 StackBase;               /* system thread stack: highest address + 1 */
    ULONG64 StackLimit;
    ULONG64 SystemTimeAtBoot;        /* KeQuerySystemTime origin, 100 ns since 1601 */
    ULONG64 Cr3;                     /* value reported as CR3 / DirectoryTableBase */
    ULONG64 PoolPhysicalBase;        /* physical address of PoolStart (linear mapping) */
    ULONG DriverCount;
    ULONG Pad0;
    PKLDR_DATA_TABLE_ENTRY Drivers[KSIM_MAX_DRIVERS];
    ULONG64 PfnDatabase;             /* virtual address of MMPFN[0]; the loader filled it */
    ULONG NumberOfRuns;              /* physical RAM: runs sorted by BasePage, merged */
    ULONG Pad1;
    struct { ULONG64 BasePage, PageCount; } Runs[KSIM_MAX_MEMORY_RUNS];
} KSIM_LOADER_BLOCK, *PKSIM_LOADER_BLOCK;

/* ---- Processor control region and block (x64, 7601) ---- */
typedef struct _KSPECIAL_REGISTERS {
    ULONG64 Cr0, Cr2, Cr3, Cr4;
    ULONG64 KernelDr0, KernelDr1, KernelDr2, KernelDr3, KernelDr6, KernelDr7;
    USHORT GdtrPad[3]; USHORT GdtrLimit; ULONG64 GdtrBase;
    USHORT IdtrPad[3]; USHORT IdtrLimit; ULONG64 IdtrBase;
    USHORT Tr, Ldtr; ULONG MxCsr;
    ULONG64 DebugControl, LastBranchToRip, LastBranchFromRip, LastExceptionToRip,
        LastExceptionFromRip, Cr8, MsrGsBase, MsrGsSwap, MsrStar, MsrLStar, MsrCStar,
        MsrSyscallMask, Xcr0;
} KSPECIAL_REGISTERS;
STATIC_ASSERT(sizeof(KSPECIAL_REGISTERS) == 0xE0);

typedef struct _KPRCB {
    ULONG MxCsr;                     /* 0x00 */
    UCHAR LegacyNumber, ReservedMustBeZero, InterruptRequest, IdleHalt;
    struct _KTHREAD *CurrentThread;  /* 0x08 */
    struct _KTHREAD *NextThread;     /* 0x10 */
    struct _KTHREAD *IdleThread;     /* 0x18 */
    UCHAR NestingLevel, Pad0[3];     /* 0x20 */
    ULONG Number;                    /* 0x24 */
    ULONG64 RspBase;                 /* 0x28 */
    ULONG64 PrcbLock;                /* 0x30 */
    ULONG64 SetMember;               /* 0x38 */
    KSPECIAL_REGISTERS SpecialRegisters; /* 0x40: ProcessorState.SpecialRegisters */
    UCHAR ContextFrame[0x4D0];       /* 0x120: ProcessorState.ContextFrame (CONTEXT) */
    UCHAR CpuType, CpuID, CpuStepping, Pad1; /* 0x5F0 */
    ULONG MHz;                       /* 0x5F4 */
    UCHAR VendorString[16];          /* 0x5F8 */
} KPRCB, *PKPRCB;
STATIC_ASSERT(FIELD_OFFSET(KPRCB, ContextFrame) == 0x120);

typedef struct _KIDTENTRY64 {
    USHORT OffsetLow, Selector;
    USHORT Flags;                    /* IST, Type 0xE (interrupt gate), DPL, Present */
    USHORT OffsetMiddle;
    ULONG OffsetHigh, Reserved;
} KIDTENTRY64;

typedef struct _KPCR {
    ULONG64 GdtBase;                 /* 0x00 */
    ULONG64 TssBase;                 /* 0x08 */
    ULONG64 UserRsp;                 /* 0x10 */
    struct _KPCR *Self;              /* 0x18 */
    PKPRCB CurrentPrcb;              /* 0x20 */
    PVOID LockArray;                 /* 0x28 */
    PVOID Used_Self;                 /* 0x30 */
    KIDTENTRY64 *IdtBase;            /* 0x38 */
    ULONG64 Unused[2];               /* 0x40 */
    KIRQL Irql;                      /* 0x50 */
    UCHAR SecondLevelCacheAssociativity, ObsoleteNumber, Fill0;
    ULONG Unused0[3];
    USHORT MajorVersion, MinorVersion; /* 0x60 */
    ULONG StallScaleFactor;
    PVOID Unused1[3];
    ULONG KernelReserved[15];
    ULONG SecondLevelCacheSize;
    ULONG HalReserved[16];
    ULONG Unused2;
    PVOID KdVersionBlock;            /* 0x108 */
    PVOID Unused3;
    ULONG PcrAlign1[26];
    KPRCB Prcb;                      /* 0x180 */
} KPCR, *PKPCR;
STATIC_ASSERT(FIELD_OFFSET(KPCR, Irql) == 0x50);
STATIC_ASSERT(FIELD_OFFSET(KPCR, KdVersionBlock) == 0x108);
STATIC_ASSERT(FIELD_OFFSET(KPCR, Prcb) == 0x180);

/* ---- Process and thread objects: 7601 x64 offsets of the fields debuggers read ---- */
#define EPROCESS_SIZE 0x4D0
#define EP_DIRECTORY_TABLE_BASE  0x028   /* Pcb.DirectoryTableBase */
#define EP_KTHREAD_LIST_HEAD     0x030   /* Pcb.ThreadListHead */
#define EP_UNIQUE_PROCESS_ID     0x180
#define EP_OBJECT_TABLE          0x200   /* HANDLE_TABLE * */
#define EP_ACTIVE_PROCESS_LINKS  0x188
#define EP_IMAGE_FILE_NAME       0x2E0
#define EP_THREAD_LIST_HEAD      0x308
#define EP_ACTIVE_THREADS        0x328
#define EP_PEB                   0x338
#define ETHREAD_SIZE 0x498
#define ET_INITIAL_STACK         0x028
#define ET_STACK_LIMIT           0x030
#define ET_KERNEL_STACK          0x038
#define ET_APC_PROCESS           0x070   /* Tcb.ApcState.Process */
#define ET_TEB                   0x0B8
#define ET_STATE                 0x164
#define ET_PROCESS               0x210   /* Tcb.Process */
#define ET_STACK_BASE            0x278   /* Tcb.StackBase: highest address + 1 */
#define ET_KTHREAD_LIST_ENTRY    0x2F8   /* Tcb.ThreadListEntry */
#define ET_CID                   0x3B0   /* Cid.UniqueProcess, Cid.UniqueThread */
#define ET_THREAD_LIST_ENTRY     0x420
#define ET_START_ADDRESS         0x388

typedef struct _KTHREAD KTHREAD, *PKTHREAD;   /* opaque: accessed by offset */
typedef struct _EPROCESS EPROCESS, *PEPROCESS;

/* ---- Pool (x64): 16-byte POOL_HEADER in front of every small block ---- */
typedef struct _POOL_HEADER {
    union {
        struct {
            ULONG PreviousSize : 8;  /* in 16-byte units; 0 for the first block in a page */
            ULONG PoolIndex : 8;
            ULONG BlockSize : 8;     /* in 16-byte units, header included */
            ULONG PoolType : 8;      /* 0 = free, otherwise (POOL_TYPE & 0x1F) + 1 */
        };
        ULONG Ulong1;
    };
    ULONG PoolTag;
    union { PVOID ProcessBilled; struct { USHORT AllocatorBackTraceIndex, PoolTagHash; }; };
} POOL_HEADER, *PPOOL_HEADER;
STATIC_ASSERT(sizeof(POOL_HEADER) == 16);
#define POOL_BLOCK_SHIFT 4
#define POOL_SMALL_MAX_UNITS 255     /* larger requests come from whole pages */

/* Big-page tracker entry (POOL_TRACKER_BIG_PAGES, 7601 x64). Bit 0 of Va marks a free slot. */
typedef struct _POOL_TRACKER_BIG_PAGES {
    ULONG64 Va;
    ULONG Key;
    ULONG PoolType;
    SIZE_T NumberOfBytes;
} POOL_TRACKER_BIG_PAGES;
STATIC_ASSERT(sizeof(POOL_TRACKER_BIG_PAGES) == 0x18);
#define POOL_BIG_TABLE_ENTRY_FREE 1

/* Per-tag statistics (POOL_TRACKER_TABLE, 7601 x64) behind KDBG.PoolTrackTable. */
typedef struct _POOL_TRACKER_TABLE {
    ULONG Key;
    LONG NonPagedAllocs;
    LONG NonPagedFrees;
    ULONG Pad0;
    SIZE_T NonPagedBytes;
    ULONG PagedAllocs;
    ULONG PagedFrees;
    SIZE_T PagedBytes;
} POOL_TRACKER_TABLE;
STATIC_ASSERT(sizeof(POOL_TRACKER_TABLE) == 0x28);

/* ---- Memory manager: the PFN database (Windows 7 SP1 x64 layouts, 0x30-byte MMPFN) ---- */
typedef ULONG64 PFN_NUMBER;

typedef struct _MMPTE_HARDWARE {
    ULONG64 Valid : 1;
    ULONG64 Dirty1 : 1;
    ULONG64 Owner : 1;
    ULONG64 WriteThrough : 1;
    ULONG64 CacheDisable : 1;
    ULONG64 Accessed : 1;
    ULONG64 Dirty : 1;
    ULONG64 LargePage : 1;
    ULONG64 Global : 1;
    ULONG64 CopyOnWrite : 1;
    ULONG64 Unused : 1;
    ULONG64 Write : 1;
    ULONG64 PageFrameNumber : 36;
    ULONG64 reserved1 : 4;
    ULONG64 SoftwareWsIndex : 11;
    ULONG64 NoExecute : 1;
} MMPTE_HARDWARE;

typedef struct _MMPTE {
    union { ULONG64 Long; MMPTE_HARDWARE Hard; } u;
} MMPTE, *PMMPTE;

typedef struct _MMPFNENTRY {
    UCHAR PageLocation : 3;          /* an MMLISTS value */
    UCHAR WriteInProgress : 1;
    UCHAR Modified : 1;
    UCHAR ReadInProgress : 1;
    UCHAR CacheAttribute : 2;
    UCHAR Priority : 3;
    UCHAR Rom : 1;
    UCHAR InPageError : 1;
    UCHAR KernelStack : 1;
    UCHAR RemovalRequested : 1;
    UCHAR ParityError : 1;
} MMPFNENTRY;

typedef struct _MMPFN {
    union { PFN_NUMBER Flink; ULONG WsIndex; PVOID Next; } u1;          /* 0x00 */
    union { PFN_NUMBER Blink; PMMPTE ImageProtoPte; ULONG64 ShareCount; } u2;  /* 0x08 */
    union { PMMPTE PteAddress; ULONG64 PteLong; };                       /* 0x10 */
    union {
        struct { USHORT ReferenceCount; MMPFNENTRY e1; };
        struct { USHORT ReferenceCount; USHORT ShortFlags; } e2;
    } u3;                                                                /* 0x18 */
    USHORT UsedPageTableEntries;                                         /* 0x1c */
    UCHAR VaType;
    UCHAR ViewCount;
    union { MMPTE OriginalPte; LONG AweReferenceCount; };                /* 0x20 */
    union {
        struct {
            ULONG64 PteFrame : 52;   /* the page of the table that holds this page's PTE */
            ULONG64 Unused : 3;
            ULONG64 PfnImageVerified : 1;
            ULONG64 AweAllocation : 1;
            ULONG64 PrototypePte : 1;
            ULONG64 PageColor : 6;
        };
        ULONG64 EntireFrame;
    } u4;                                                                /* 0x28 */
} MMPFN, *PMMPFN;
STATIC_ASSERT(sizeof(MMPFN) == 0x30);
STATIC_ASSERT(FIELD_OFFSET(MMPFN, PteAddress) == 0x10);
STATIC_ASSERT(FIELD_OFFSET(MMPFN, u3) == 0x18);
STATIC_ASSERT(FIELD_OFFSET(MMPFN, UsedPageTableEntries) == 0x1c);
STATIC_ASSERT(FIELD_OFFSET(MMPFN, u4) == 0x28);

typedef enum _MMLISTS {
    ZeroedPageList = 0, FreePageList = 1, StandbyPageList = 2, ModifiedPageList = 3,
    ModifiedNoWritePageList = 4, BadPageList = 5, ActiveAndValid = 6, TransitionPage = 7
} MMLISTS;

typedef struct _MMPFNLIST {
    ULONG64 Total;
    MMLISTS ListName;
    PFN_NUMBER Flink;                /* PFN of the first page, MM_EMPTY_LIST if none */
    PFN_NUMBER Blink;
    ULONG64 Lock;
} MMPFNLIST, *PMMPFNLIST;
STATIC_ASSERT(sizeof(MMPFNLIST) == 0x28);
#define MM_EMPTY_LIST ((PFN_NUMBER)-1)

typedef struct _PHYSICAL_MEMORY_RUN { PFN_NUMBER BasePage, PageCount; } PHYSICAL_MEMORY_RUN;
typedef struct _PHYSICAL_MEMORY_DESCRIPTOR {
    ULONG NumberOfRuns;
    PFN_NUMBER NumberOfPages;
    PHYSICAL_MEMORY_RUN Run[1];
} PHYSICAL_MEMORY_DESCRIPTOR, *PPHYSICAL_MEMORY_DESCRIPTOR;

/* Windows 7 x64's self-map: where a PTE of ``va`` would be seen (MiGetPteAddress). */
#define MM_PTE_BASE 0xFFFFF68000000000ULL
#define MiGetPteAddress(va) ((PMMPTE)((((ULONG64)(va) >> 9) & 0x7FFFFFFFF8ULL) + MM_PTE_BASE))

/* ---- Debugger data (KDDEBUGGER_DATA64, kd-protocol.md 7.2) ---- */
#define KDDEBUGGER_DATA_SIZE 0x380
#define KDBG_TAG 0x4742444BUL

/* ---- Globals shared between kernel modules ---- */
extern KPCR KiPcr;
extern ULONG volatile KiSimRequest;
extern LIST_ENTRY PsLoadedModuleList;
extern LIST_ENTRY PsActiveProcessHead;
extern ULONG64 KiBugCheckData[5];
extern BOOLEAN KdDebuggerEnabled;
extern BOOLEAN KdDebuggerNotPresent;
extern PKSIM_LOADER_BLOCK KiLoaderBlock;
extern PVOID PsInitialSystemProcess;
extern PVOID KiSystemThread;

/* ---- Internal functions ---- */
ULONG_PTR DebugService(ULONG Service, PVOID Arg1, ULONG_PTR Arg2, PVOID Arg3, ULONG_PTR Arg4);
VOID NTAPI DbgBreakPoint(VOID);
VOID NTAPI DbgBreakPointWithStatus(ULONG Status);
ULONG __cdecl DbgPrint(PCSTR Format, ...);
DECLSPEC_NORETURN VOID NTAPI KeBugCheckEx(ULONG Code, ULONG_PTR P1, ULONG_PTR P2, ULONG_PTR P3, ULONG_PTR P4);
KIRQL NTAPI KeGetCurrentIrql(VOID);
KIRQL NTAPI KfRaiseIrql(KIRQL NewIrql);
VOID NTAPI KeLowerIrql(KIRQL NewIrql);
VOID NTAPI DbgLoadImageSymbols(PSTRING FileName, PVOID ImageBase, ULONG_PTR ProcessId);
VOID NTAPI DbgUnLoadImageSymbols(PSTRING FileName, PVOID ImageBase, ULONG_PTR ProcessId);
PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
VOID NTAPI ExFreePoolWithTag(PVOID P, ULONG Tag);
VOID NTAPI ExFreePool(PVOID P);
PVOID __cdecl memset(PVOID Dest, int Value, SIZE_T Count);
PVOID __cdecl memcpy(PVOID Dest, const void *Src, SIZE_T Count);
PVOID __cdecl memmove(PVOID Dest, const void *Src, SIZE_T Count);
SIZE_T __cdecl strlen(PCSTR S);
int __cdecl _vsnprintf(PCHAR Buffer, SIZE_T Count, PCSTR Format, __builtin_va_list Args);
VOID NTAPI RtlInitUnicodeString(PUNICODE_STRING Dest, PCWSTR Source);
VOID NTAPI RtlInitAnsiString(PANSI_STRING Dest, PCSTR Source);
LONG NTAPI RtlCompareUnicodeString(PCUNICODE_STRING S1, PCUNICODE_STRING S2, BOOLEAN CaseInsensitive);

VOID KiInitializePool(ULONG64 Start, ULONG64 Size);
VOID MiInitializePfnDatabase(PKSIM_LOADER_BLOCK LoaderBlock);
VOID MiFreeImagePages(PVOID Base, SIZE_T Size);
VOID MiRememberUnloadedImage(PVOID Base, SIZE_T Size);
BOOLEAN MiInUnloadedImage(ULONG64 Va);
PVOID MiAllocatePages(SIZE_T Pages);
SIZE_T MiFreePages(PVOID Va);
VOID KiInitializeObjects(VOID);
VOID IopInitialize(VOID);
NTSTATUS IopStartDriver(PKLDR_DATA_TABLE_ENTRY Entry);
VOID IopTickDrivers(ULONG IoControlCode);
VOID IopUnloadDrivers(VOID);
VOID IopBadAccessAtDispatch(VOID);
DECLSPEC_NORETURN VOID KiAbandonRequest(VOID);
VOID KiInitializeInterrupts(VOID);
ULONG64 KiQueryInterruptTime(VOID);

/* An entry the machine enters like an interrupt (only the return address pushed):
 * it saves every register the C code may change (flags, the volatile registers,
 * xmm0-xmm5), calls Handler and returns to the interrupted code untouched.  The
 * unwind codes let a stack walk (a debugger's `k`, the exception dispatcher) go on
 * from it into the interrupted code. */
#define KI_INTERRUPT_ENTRY(Name, Handler) \
__asm__(".text\n" \
        ".globl " #Name "\n" \
        ".seh_proc " #Name "\n" \
        #Name ":\n" \
        "    pushfq\n                .seh_stackalloc 8\n" \
        "    pushq %rax\n            .seh_pushreg %rax\n" \
        "    pushq %rcx\n            .seh_pushreg %rcx\n" \
        "    pushq %rdx\n            .seh_pushreg %rdx\n" \
        "    pushq %r8\n             .seh_pushreg %r8\n" \
        "    pushq %r9\n             .seh_pushreg %r9\n" \
        "    pushq %r10\n            .seh_pushreg %r10\n" \
        "    pushq %r11\n            .seh_pushreg %r11\n" \
        "    pushq %rbp\n            .seh_pushreg %rbp\n" \
        "    movq %rsp, %rbp\n       .seh_setframe %rbp, 0\n" \
        "    .seh_endprologue\n" \
        "    andq $-16, %rsp\n" \
        "    subq $0x80, %rsp\n" \
        "    movdqa %xmm0, 0x20(%rsp)\n    movdqa %xmm1, 0x30(%rsp)\n" \
        "    movdqa %xmm2, 0x40(%rsp)\n    movdqa %xmm3, 0x50(%rsp)\n" \
        "    movdqa %xmm4, 0x60(%rsp)\n    movdqa %xmm5, 0x70(%rsp)\n" \
        "    call " #Handler "\n" \
        "    movdqa 0x20(%rsp), %xmm0\n    movdqa 0x30(%rsp), %xmm1\n" \
        "    movdqa 0x40(%rsp), %xmm2\n    movdqa 0x50(%rsp), %xmm3\n" \
        "    movdqa 0x60(%rsp), %xmm4\n    movdqa 0x70(%rsp), %xmm5\n" \
        "    movq %rbp, %rsp\n" \
        "    popq %rbp\n    popq %r11\n    popq %r10\n    popq %r9\n" \
        "    popq %r8\n    popq %rdx\n    popq %rcx\n    popq %rax\n" \
        "    popfq\n" \
        "    ret\n" \
        ".seh_endproc\n")

#ifdef KSIM_BUILDING_HAL
#define HALAPI
#else
#define HALAPI __declspec(dllimport)
#endif
#ifdef KSIM_BUILDING_KDCOM
#define KDCOMAPI
#else
#define KDCOMAPI __declspec(dllimport)
#endif

/* hal.dll */
HALAPI VOID NTAPI HalSimControl(ULONG Command, ULONG64 Arg1, ULONG64 Arg2);
HALAPI LARGE_INTEGER NTAPI KeQueryPerformanceCounter(PLARGE_INTEGER Frequency);
HALAPI BOOLEAN NTAPI HalInitSystem(ULONG Phase, PVOID LoaderBlock);
/* kdcom.dll */
KDCOMAPI ULONG NTAPI KdReceivePacket(ULONG PacketType, PVOID MessageHeader,
    PVOID MessageData, PULONG DataLength, PVOID Context);
KDCOMAPI NTSTATUS NTAPI KdDebuggerInitialize0(PVOID LoaderBlock);

#define PACKET_TYPE_KD_POLL_BREAKIN 8
#define KdPacketReceived 0

#endif
