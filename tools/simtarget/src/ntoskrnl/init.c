/*
 * init.c - kernel start-up, debugger data and the system loop.
 *
 * The machine (the Python loader) maps ntoskrnl, hal, kdcom and the drivers, links
 * their KLDR_DATA_TABLE_ENTRY records into PsLoadedModuleList and enters
 * KiSystemStartup with a KSIM_LOADER_BLOCK.  The kernel then initialises the
 * processor block, pool, the page lists of the PFN database, the System process, the
 * debugger data (KdVersionBlock, KdDebuggerDataBlock: kd-protocol.md 5.4 and 7.2),
 * reports the system images to the debugger, starts every driver and runs the system
 * loop, which services KiSimRequest and sends IOCTL_TRACKDEMO_TICK to every device
 * object each tick.
 */
#include "ki.h"

__declspec(align(64)) KPCR KiPcr;
ULONG volatile KiSimRequest;
ULONG volatile KiSystemLoopCount;
LIST_ENTRY PsLoadedModuleList;
LIST_ENTRY PsActiveProcessHead;
ULONG64 KiBugCheckData[5];
BOOLEAN KdDebuggerEnabled;
BOOLEAN KdDebuggerNotPresent = TRUE;
PKSIM_LOADER_BLOCK KiLoaderBlock;
PVOID KeLoaderBlock;
PVOID PsInitialSystemProcess;
PVOID KiSystemThread;
PVOID KiProcessorBlock[1];
ULONG NtBuildNumber = 0xF0000000UL | 7601;   /* free build */
ULONG CmNtCSDVersion = 0x100;                /* Service Pack 1 */
CHAR NtBuildLab[] = "7601.ksim.amd64fre";
ULONG64 MmNonPagedPoolStart, MmNonPagedPoolEnd;
ULONG64 MmHighestUserAddress = 0x000007FFFFFEFFFFULL;
ULONG64 MmSystemRangeStart = 0xFFFF080000000000ULL;
ULONG64 MmUserProbeAddress = 0x000007FFFFFF0000ULL;
ULONG KeTimeIncrement = 156250;

extern PVOID PoolBigPageTable;
extern PVOID PoolTrackTable;
extern PMMPFN MmPfnDatabase;
extern PFN_NUMBER MmLowestPhysicalPage, MmHighestPhysicalPage, MmNumberOfPhysicalPages;
extern PFN_NUMBER MmAvailablePages, MmResidentAvailablePages;
extern PPHYSICAL_MEMORY_DESCRIPTOR MmPhysicalMemoryBlock;
extern MMPFNLIST MmZeroedPageListHead, MmFreePageListHead, MmStandbyPageListHead,
    MmModifiedPageListHead, MmModifiedNoWritePageListHead;
extern CHAR KdPrintCircularBuffer[];
extern PCHAR KdPrintCircularBufferPtr, KdPrintWritePointer;
extern ULONG KdPrintBufferSize, KdPrintRolloverCount;
extern UCHAR RtlpBreakWithStatusInstruction[];

/* DBGKD_GET_VERSION64 (kd-protocol.md 5.4). */
typedef struct _DBGKD_GET_VERSION64 {
    USHORT MajorVersion, MinorVersion;
    UCHAR ProtocolVersion, KdSecondaryVersion;
    USHORT Flags, MachineType;
    UCHAR MaxPacketType, MaxStateChange, MaxManipulate, Simulation;
    USHORT Unused[1];
    ULONG64 KernBase, PsLoadedModuleList, DebuggerDataList;
} DBGKD_GET_VERSION64;
STATIC_ASSERT(sizeof(DBGKD_GET_VERSION64) == 40);

DBGKD_GET_VERSION64 KdVersionBlock;
LIST_ENTRY KdpDebuggerDataListHead;
__declspec(align(16)) UCHAR KdDebuggerDataBlock[KDDEBUGGER_DATA_SIZE];

static void *KiLoopJumpBuffer[5];
/* 'Ksim' in memory: the kernel's own scenario allocations. */
#define KSIM_POOL_TAG 0x6D69734BUL
PVOID KiSimBigPoolBlock;
static DECLSPEC_NORETURN VOID KiSystemLoop(VOID);
VOID KiInitializeSharedUserData(VOID);
VOID KiUpdateSharedUserData(VOID);

#define KDBG_Q(off, v) (*(ULONG64 *)&KdDebuggerDataBlock[(off)] = (ULONG64)(v))
#define KDBG_W(off, v) (*(USHORT *)&KdDebuggerDataBlock[(off)] = (USHORT)(v))

static VOID KdpFillDebuggerData(PVOID KernBase)
{
    PLIST_ENTRY header = (PLIST_ENTRY)KdDebuggerDataBlock;

    memset(KdDebuggerDataBlock, 0, sizeof(KdDebuggerDataBlock));
    *(ULONG *)&KdDebuggerDataBlock[0x10] = KDBG_TAG;
    *(ULONG *)&KdDebuggerDataBlock[0x14] = KDDEBUGGER_DATA_SIZE;
    KDBG_Q(0x18, KernBase);
    KDBG_Q(0x20, RtlpBreakWithStatusInstruction);
    KDBG_Q(0x28, KiPcr.Prcb.ContextFrame);         /* SavedContext */
    KDBG_W(0x36, 0);                                /* PaeEnabled: no PAE on x64 tables */
    KDBG_Q(0x48, &PsLoadedModuleList);
    KDBG_Q(0x50, &PsActiveProcessHead);
    KDBG_Q(0x78, &KeTimeIncrement);
    KDBG_Q(0x88, KiBugCheckData);
    KDBG_Q(0xC0, &MmPfnDatabase);
    KDBG_Q(0xE8, &MmLowestPhysicalPage);
    KDBG_Q(0xF0, &MmHighestPhysicalPage);
    KDBG_Q(0xF8, &MmNumberOfPhysicalPages);
    KDBG_Q(0x110, &MmNonPagedPoolStart);
    KDBG_Q(0x118, &MmNonPagedPoolEnd);
    KDBG_Q(0x120, &MmNonPagedPoolStart);           /* one pool serves paged requests too */
    KDBG_Q(0x128, &MmNonPagedPoolEnd);
    KDBG_Q(0x138, PAGE_SIZE);
    KDBG_Q(0x180, &MmZeroedPageListHead);
    KDBG_Q(0x188, &MmFreePageListHead);
    KDBG_Q(0x190, &MmStandbyPageListHead);
    KDBG_Q(0x198, &MmModifiedPageListHead);
    KDBG_Q(0x1A0, &MmModifiedNoWritePageListHead);
    KDBG_Q(0x1A8, &MmAvailablePages);
    KDBG_Q(0x1B0, &MmResidentAvailablePages);
    KDBG_Q(0x1B8, &PoolTrackTable);
    KDBG_Q(0x1C8, &MmHighestUserAddress);
    KDBG_Q(0x1D0, &MmSystemRangeStart);
    KDBG_Q(0x1D8, &MmUserProbeAddress);
    KDBG_Q(0x1E0, KdPrintCircularBuffer);
    KDBG_Q(0x1E8, KdPrintCircularBuffer + KdPrintBufferSize);   /* KdPrintCircularBufferEnd */
    KDBG_Q(0x1F0, &KdPrintWritePointer);
    KDBG_Q(0x1F8, &KdPrintRolloverCount);
    KDBG_Q(0x208, NtBuildLab);
    KDBG_Q(0x218, KiProcessorBlock);
    KDBG_Q(0x268, &CmNtCSDVersion);
    KDBG_Q(0x270, &MmPhysicalMemoryBlock);
    KDBG_W(0x29A, ET_TEB);
    KDBG_W(0x29C, ET_KERNEL_STACK);
    KDBG_W(0x29E, ET_INITIAL_STACK);
    KDBG_W(0x2A0, ET_APC_PROCESS);
    KDBG_W(0x2A2, ET_STATE);
    KDBG_W(0x2A8, EPROCESS_SIZE);
    KDBG_W(0x2AA, EP_PEB);
    KDBG_W(0x2AE, EP_DIRECTORY_TABLE_BASE);
    KDBG_W(0x2B0, sizeof(KPRCB));
    KDBG_W(0x2B4, FIELD_OFFSET(KPRCB, CurrentThread));
    KDBG_W(0x2B6, FIELD_OFFSET(KPRCB, MHz));
    KDBG_W(0x2B8, FIELD_OFFSET(KPRCB, CpuType));
    KDBG_W(0x2BA, FIELD_OFFSET(KPRCB, VendorString));
    KDBG_W(0x2BC, FIELD_OFFSET(KPRCB, ContextFrame));
    KDBG_W(0x2BE, FIELD_OFFSET(KPRCB, Number));
    KDBG_W(0x2C0, ETHREAD_SIZE);
    KDBG_Q(0x2C8, &KdPrintCircularBufferPtr);
    KDBG_Q(0x2D0, &KdPrintBufferSize);
    KDBG_Q(0x2D8, &KeLoaderBlock);
    KDBG_W(0x2E0, sizeof(KPCR));
    KDBG_W(0x2E2, FIELD_OFFSET(KPCR, Self));
    KDBG_W(0x2E4, FIELD_OFFSET(KPCR, CurrentPrcb));
    KDBG_W(0x2E6, FIELD_OFFSET(KPCR, Prcb));
    KDBG_W(0x2F2, FIELD_OFFSET(KPRCB, SpecialRegisters));
    KDBG_W(0x2F4, 0x10);                            /* GdtR0Code */
    KDBG_W(0x2F6, 0x18);                            /* GdtR0Data */
    KDBG_W(0x2FA, 0x33);                            /* GdtR3Code */
    KDBG_W(0x2FC, 0x2B);                            /* GdtR3Data */
    KDBG_W(0x302, 0x40);                            /* GdtTss */
    KDBG_W(0x338, FIELD_OFFSET(KPRCB, ContextFrame));

    /* DebuggerDataList is a list head whose Flink is KDBG's header (5.4). */
    KdpDebuggerDataListHead.Flink = header;
    KdpDebuggerDataListHead.Blink = header;
    header->Flink = &KdpDebuggerDataListHead;
    header->Blink = &KdpDebuggerDataListHead;

    KdVersionBlock.MajorVersion = 0x000F;           /* DBGKD_MAJOR_NT, free build */
    KdVersionBlock.MinorVersion = (USHORT)(NtBuildNumber & 0xFFFF);
    KdVersionBlock.ProtocolVersion = 6;
    KdVersionBlock.KdSecondaryVersion = 2;
    KdVersionBlock.Flags = 0x2 | 0x4;               /* DATA | PTR64 */
    KdVersionBlock.MachineType = 0x8664;
    KdVersionBlock.MaxPacketType = 12;
    KdVersionBlock.MaxStateChange = 3;
    KdVersionBlock.MaxManipulate = 0x31;
    KdVersionBlock.KernBase = (ULONG64)KernBase;
    KdVersionBlock.PsLoadedModuleList = (ULONG64)&PsLoadedModuleList;
    KdVersionBlock.DebuggerDataList = (ULONG64)&KdpDebuggerDataListHead;
    KiPcr.KdVersionBlock = &KdVersionBlock;
}

#define FIELD(p, off, type) (*(type *)((PUCHAR)(p) + (off)))

static VOID KiInitializeSystemProcess(VOID)
{
    PUCHAR process = ExAllocatePoolWithTag(NonPagedPool, EPROCESS_SIZE, 'corP');
    PUCHAR thread = ExAllocatePoolWithTag(NonPagedPool, ETHREAD_SIZE, 'erhT');

    memset(process, 0, EPROCESS_SIZE);
    memset(thread, 0, ETHREAD_SIZE);
    FIELD(process, 0, UCHAR) = 3;                   /* ProcessObject */
    FIELD(process, EP_DIRECTORY_TABLE_BASE, ULONG64) = KiLoaderBlock->Cr3;
    FIELD(process, EP_UNIQUE_PROCESS_ID, ULONG64) = 4;
    memcpy(process + EP_IMAGE_FILE_NAME, "System", 7);
    FIELD(process, EP_ACTIVE_THREADS, ULONG) = 1;
    PsActiveProcessHead.Flink = PsActiveProcessHead.Blink = (PLIST_ENTRY)(process + EP_ACTIVE_PROCESS_LINKS);
    FIELD(process, EP_ACTIVE_PROCESS_LINKS, PLIST_ENTRY) = &PsActiveProcessHead;
    FIELD(process, EP_ACTIVE_PROCESS_LINKS + 8, PLIST_ENTRY) = &PsActiveProcessHead;

    FIELD(thread, 0, UCHAR) = 6;                    /* ThreadObject */
    FIELD(thread, ET_INITIAL_STACK, ULONG64) = KiLoaderBlock->StackBase;
    FIELD(thread, ET_STACK_BASE, ULONG64) = KiLoaderBlock->StackBase;
    FIELD(thread, ET_STACK_LIMIT, ULONG64) = KiLoaderBlock->StackLimit;
    FIELD(thread, ET_KERNEL_STACK, ULONG64) = KiLoaderBlock->StackBase;
    FIELD(thread, ET_APC_PROCESS, PVOID) = process;
    FIELD(thread, ET_STATE, UCHAR) = 2;             /* Running */
    FIELD(thread, ET_PROCESS, PVOID) = process;
    FIELD(thread, ET_CID, ULONG64) = 4;
    FIELD(thread, ET_CID + 8, ULONG64) = 8;
    FIELD(thread, ET_START_ADDRESS, PVOID) = (PVOID)KiSystemLoop;
    /* Both thread lists (KPROCESS and EPROCESS) hold the one system thread. */
    FIELD(process, EP_KTHREAD_LIST_HEAD, PVOID) = thread + ET_KTHREAD_LIST_ENTRY;
    FIELD(process, EP_KTHREAD_LIST_HEAD + 8, PVOID) = thread + ET_KTHREAD_LIST_ENTRY;
    FIELD(thread, ET_KTHREAD_LIST_ENTRY, PVOID) = process + EP_KTHREAD_LIST_HEAD;
    FIELD(thread, ET_KTHREAD_LIST_ENTRY + 8, PVOID) = process + EP_KTHREAD_LIST_HEAD;
    FIELD(process, EP_THREAD_LIST_HEAD, PVOID) = thread + ET_THREAD_LIST_ENTRY;
    FIELD(process, EP_THREAD_LIST_HEAD + 8, PVOID) = thread + ET_THREAD_LIST_ENTRY;
    FIELD(thread, ET_THREAD_LIST_ENTRY, PVOID) = process + EP_THREAD_LIST_HEAD;
    FIELD(thread, ET_THREAD_LIST_ENTRY + 8, PVOID) = process + EP_THREAD_LIST_HEAD;

    PsInitialSystemProcess = process;
    KiSystemThread = thread;
    KiPcr.Prcb.CurrentThread = (PKTHREAD)thread;
    KiPcr.Prcb.IdleThread = (PKTHREAD)thread;
}

/* Reports one loaded module to the debugger (int 2Dh, BREAKPOINT_LOAD_SYMBOLS). */
VOID KdpReportModule(PKLDR_DATA_TABLE_ENTRY Entry, BOOLEAN Unload)
{
    CHAR path[260];
    STRING name;
    ULONG i, n = Entry->FullDllName.Length / sizeof(WCHAR);

    if (n >= sizeof(path))
        n = sizeof(path) - 1;
    for (i = 0; i < n; i++) {
        WCHAR c = Entry->FullDllName.Buffer[i];
        path[i] = c < 0x80 ? (CHAR)c : '?';
    }
    path[n] = 0;
    name.Buffer = path;
    name.Length = (USHORT)n;
    name.MaximumLength = (USHORT)(n + 1);
    if (Unload)
        DbgUnLoadImageSymbols(&name, Entry->DllBase, 0);
    else
        DbgLoadImageSymbols(&name, Entry->DllBase, 0);
}

static BOOLEAN KdPollBreakIn(VOID)
{
    return KdReceivePacket(PACKET_TYPE_KD_POLL_BREAKIN, NULL, NULL, NULL, NULL) == KdPacketReceived;
}

/* Called from the clock interrupt the machine delivers (KSIM_VECTOR_CLOCK). */
VOID KiClockInterruptHandler(VOID)
{
    KIRQL old = KiPcr.Irql;
    KiPcr.Irql = CLOCK_LEVEL;
    KiUpdateSharedUserData();
    if (KdDebuggerEnabled && KdPollBreakIn())
        DbgBreakPointWithStatus(DBG_STATUS_CONTROL_C);
    KiPcr.Irql = old;
}

static const ULONG KiRequestIoctls[] = {
    0, IOCTL_TRACKDEMO_LEAK, IOCTL_TRACKDEMO_OVERWRITE, IOCTL_TRACKDEMO_STATS,
    IOCTL_TRACKDEMO_DUMP, IOCTL_TRACKDEMO_VALIDATE,
};

static VOID KiServiceRequest(VOID)
{
    ULONG request = KiSimRequest;

    if (request == KSIM_REQUEST_NONE)
        return;
    KiSimRequest = KSIM_REQUEST_NONE;
    switch (request) {
    case KSIM_REQUEST_LEAK: case KSIM_REQUEST_OVERWRITE: case KSIM_REQUEST_STATS:
    case KSIM_REQUEST_DUMP: case KSIM_REQUEST_VALIDATE:
        IopTickDrivers(KiRequestIoctls[request]);
        break;
    case KSIM_REQUEST_UNLOAD:
        IopUnloadDrivers();
        break;
    case KSIM_REQUEST_BUGCHECK:
        KeBugCheckEx(MANUALLY_INITIATED_CRASH, 0, 0, 0, 0);
    case KSIM_REQUEST_BAD_ACCESS:
        IopBadAccessAtDispatch();
        break;
    case KSIM_REQUEST_BIG_POOL:
        if (KiSimBigPoolBlock) {
            ExFreePoolWithTag(KiSimBigPoolBlock, KSIM_POOL_TAG);
            KiSimBigPoolBlock = NULL;
        } else {
            KiSimBigPoolBlock = ExAllocatePoolWithTag(NonPagedPool, KSIM_BIG_POOL_SIZE, KSIM_POOL_TAG);
        }
        break;
    default:
        DbgPrint("KSIM: unknown KiSimRequest %lu ignored\n", request);
        break;
    }
}

/* The assertion answers 'p' and 't' end the current request here (RtlAssert). */
DECLSPEC_NORETURN VOID KiAbandonRequest(VOID)
{
    KiPcr.Irql = PASSIVE_LEVEL;
    __builtin_longjmp(KiLoopJumpBuffer, 1);
}

VOID KiSchedule(VOID);

static DECLSPEC_NORETURN VOID KiSystemLoop(VOID)
{
    __builtin_setjmp(KiLoopJumpBuffer);
    for (;;) {
        KiSchedule();
        KiUpdateSharedUserData();
        KiServiceRequest();
        IopTickDrivers(IOCTL_TRACKDEMO_TICK);
        KiSystemLoopCount++;
    }
}

DECLSPEC_NORETURN VOID NTAPI KiSystemStartup(PKSIM_LOADER_BLOCK LoaderBlock)
{
    PKLDR_DATA_TABLE_ENTRY kernel;
    PLIST_ENTRY link;
    ULONG i;

    KiLoaderBlock = LoaderBlock;
    KeLoaderBlock = LoaderBlock;
    KiPcr.Self = &KiPcr;
    KiPcr.CurrentPrcb = &KiPcr.Prcb;
    KiPcr.Irql = HIGH_LEVEL;
    KiPcr.MajorVersion = 1;
    KiPcr.MinorVersion = 1;
    KiPcr.Prcb.MxCsr = 0x1F80;
    KiPcr.Prcb.CpuType = 6;
    KiPcr.Prcb.MHz = 1000;
    memcpy(KiPcr.Prcb.VendorString, "KsimVirtualCPU", 15);
    KiProcessorBlock[0] = &KiPcr.Prcb;

    HalInitSystem(0, LoaderBlock);
    KiInitializeInterrupts();
    KiInitializePool(LoaderBlock->PoolStart, LoaderBlock->PoolSize);
    MmNonPagedPoolStart = LoaderBlock->PoolStart;
    MmNonPagedPoolEnd = LoaderBlock->PoolStart + LoaderBlock->PoolSize;
    MiInitializePfnDatabase(LoaderBlock);
    KiInitializeSystemProcess();

    kernel = CONTAINING_RECORD(PsLoadedModuleList.Flink, KLDR_DATA_TABLE_ENTRY, InLoadOrderLinks);
    KdpFillDebuggerData(kernel->DllBase);
    KdDebuggerInitialize0(LoaderBlock);
    KdDebuggerEnabled = TRUE;
    KdDebuggerNotPresent = FALSE;
    KiInitializeSharedUserData();

    /* The system images are reported first, as KdInitSystem does; a break-in that is
     * already waiting stops here (KdBreakAfterSymbolLoad). */
    for (link = PsLoadedModuleList.Flink; link != &PsLoadedModuleList; link = link->Flink) {
        PKLDR_DATA_TABLE_ENTRY entry = CONTAINING_RECORD(link, KLDR_DATA_TABLE_ENTRY, InLoadOrderLinks);
        if (entry->Flags & LDRP_KSIM_SYSTEM_IMAGE)
            KdpReportModule(entry, FALSE);
    }
    if (KdPollBreakIn())
        DbgBreakPointWithStatus(DBG_STATUS_CONTROL_C);

    KiInitializeObjects();
    IopInitialize();
    KiPcr.Irql = PASSIVE_LEVEL;
    for (i = 0; i < LoaderBlock->DriverCount && i < KSIM_MAX_DRIVERS; i++)
        IopStartDriver(LoaderBlock->Drivers[i]);

    HalSimControl(KSIM_CONTROL_BOOTED, 0, 0);
    KiSystemLoop();
}
