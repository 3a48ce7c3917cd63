/*
 * thread.c - system threads and a simple scheduler for the one simulated processor.
 *
 * PsCreateSystemThread makes a thread object (ETHREAD in Windows 7 x64's layout, the
 * fields debuggers read filled in: Cid, StartAddress, State, InitialStack, StackBase,
 * StackLimit, KernelStack, both thread lists of the System process) with a 24 KB kernel
 * stack from nonpaged pool (tag 'kStK'), and a handle to it.  Scheduling is cooperative and round
 * robin: a thread runs until it waits, delays or terminates; every wait and delay
 * (sync.c) and every pass of the system loop calls KiSchedule, which runs the clock's
 * due timers and DPCs and then switches to the next thread of the process that has not
 * terminated.  Priorities are kept (KeSetPriorityThread) but do not change the order.
 * A switch happens below DISPATCH_LEVEL only (IRQL is kept per thread: one holding a
 * fast mutex at APC_LEVEL does not lend it to the next), saving the nonvolatile registers of the
 * x64 calling convention (rbx, rbp, rdi, rsi, r12-r15, xmm6-xmm15) on the thread's own
 * stack; KTHREAD.KernelStack holds the saved stack pointer, as on Windows.
 *
 * Rules from the WDK documentation: PsCreateSystemThread runs StartRoutine(StartContext)
 * at PASSIVE_LEVEL in a new thread and returns a handle the driver must close with
 * ZwClose; a thread ends by calling PsTerminateSystemThread (returning from the start
 * routine does the same here); PsTerminateSystemThread returns STATUS_INVALID_PARAMETER
 * to a caller that is not a thread PsCreateSystemThread made; a thread object is
 * signalled when the thread has terminated, so KeWaitForSingleObject on it (through
 * ObReferenceObjectByHandle) waits for the end.  The terminated thread's stack is freed
 * by the next thread that runs; its object when the last reference goes.
 */
#include "ksimrt.h"

#define KERNEL_STACK_SIZE 0x6000
#define STACK_TAG 'kStK'
#define THREAD_STATE_READY 1
#define THREAD_STATE_RUNNING 2
#define THREAD_STATE_TERMINATED 4
#define ET_EXIT_STATUS 0x380            /* ETHREAD.ExitStatus (7601) */
#define ET_PRIORITY 0x07B               /* KTHREAD.Priority (7601) */
#define ET_KSIM_START_CONTEXT 0x490     /* the start routine's argument; read by nobody else */
#define ET_KSIM_IRQL 0x488              /* the IRQL a switched-out thread resumes at */
#define FIELD(p, off, type) (*(type *)((PUCHAR)(p) + (off)))
#ifndef STATUS_INVALID_PARAMETER
#define STATUS_INVALID_PARAMETER ((NTSTATUS)0xC000000DL)
#endif
#ifndef STATUS_INSUFFICIENT_RESOURCES
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL)
#endif

typedef VOID (NTAPI *PKSTART_ROUTINE)(PVOID StartContext);
typedef struct _CLIENT_ID { HANDLE UniqueProcess, UniqueThread; } CLIENT_ID, *PCLIENT_ID;

PVOID ObpCreateThreadObject(PHANDLE Handle);
NTSTATUS ObpInsertObjectHandle(PVOID Object, ACCESS_MASK Access, ULONG Attributes, PHANDLE Handle);
VOID PspNotifyThread(PUCHAR Thread, BOOLEAN Create);
VOID NTAPI ObDereferenceObject(PVOID Object);
VOID KiDeliverClock(VOID);
VOID KiSwapContext(PULONG64 OldStack, ULONG64 NewStack);

static ULONG KiCreatedThreads;          /* threads alive besides the system loop's */
static ULONG64 KiNextThreadId = 0x0C;
static PUCHAR KiThreadToReap;

/* Saves the nonvolatile registers on the current stack, stores the stack pointer in
 * *OldStack (rcx), loads NewStack (rdx) and restores the other thread's registers. */
__asm__(".text\n"
        ".globl KiSwapContext\n"
        "KiSwapContext:\n"
        "    pushq %rbx\n    pushq %rbp\n    pushq %rdi\n    pushq %rsi\n"
        "    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    subq $0xA8, %rsp\n"
        "    movdqu %xmm6, 0x00(%rsp)\n    movdqu %xmm7, 0x10(%rsp)\n"
        "    movdqu %xmm8, 0x20(%rsp)\n    movdqu %xmm9, 0x30(%rsp)\n"
        "    movdqu %xmm10, 0x40(%rsp)\n   movdqu %xmm11, 0x50(%rsp)\n"
        "    movdqu %xmm12, 0x60(%rsp)\n   movdqu %xmm13, 0x70(%rsp)\n"
        "    movdqu %xmm14, 0x80(%rsp)\n   movdqu %xmm15, 0x90(%rsp)\n"
        "    movq %rsp, (%rcx)\n"
        "    movq %rdx, %rsp\n"
        "    movdqu 0x00(%rsp), %xmm6\n    movdqu 0x10(%rsp), %xmm7\n"
        "    movdqu 0x20(%rsp), %xmm8\n    movdqu 0x30(%rsp), %xmm9\n"
        "    movdqu 0x40(%rsp), %xmm10\n   movdqu 0x50(%rsp), %xmm11\n"
        "    movdqu 0x60(%rsp), %xmm12\n   movdqu 0x70(%rsp), %xmm13\n"
        "    movdqu 0x80(%rsp), %xmm14\n   movdqu 0x90(%rsp), %xmm15\n"
        "    addq $0xA8, %rsp\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n"
        "    popq %rsi\n    popq %rdi\n    popq %rbp\n    popq %rbx\n"
        "    ret\n");
#define KI_SWAP_FRAME (0xA8 + 8 * 8)

static PUCHAR KiProcessOf(PUCHAR Thread) { return FIELD(Thread, ET_PROCESS, PUCHAR); }

/* The thread after Thread in its process's list that has not terminated. */
static PUCHAR KiNextThread(PUCHAR Thread)
{
    PLIST_ENTRY head = (PLIST_ENTRY)(KiProcessOf(Thread) + EP_KTHREAD_LIST_HEAD);
    PLIST_ENTRY link = (PLIST_ENTRY)(Thread + ET_KTHREAD_LIST_ENTRY);
    for (;;) {
        PUCHAR next;
        link = link->Flink;
        if (link == head)
            continue;
        next = (PUCHAR)link - ET_KTHREAD_LIST_ENTRY;
        if (next == Thread || FIELD(next, ET_STATE, UCHAR) != THREAD_STATE_TERMINATED)
            return next;
    }
}

static VOID KiReap(VOID)
{
    PUCHAR thread = KiThreadToReap;
    if (!thread)
        return;
    KiThreadToReap = NULL;
    ExFreePoolWithTag((PVOID)FIELD(thread, ET_STACK_LIMIT, ULONG64), STACK_TAG);
    ObDereferenceObject(thread);        /* the thread's own reference */
}

static VOID KiSwitchTo(PUCHAR Next)
{
    PUCHAR current = (PUCHAR)KiPcr.Prcb.CurrentThread;
    if (FIELD(current, ET_STATE, UCHAR) == THREAD_STATE_RUNNING)
        FIELD(current, ET_STATE, UCHAR) = THREAD_STATE_READY;
    FIELD(Next, ET_STATE, UCHAR) = THREAD_STATE_RUNNING;
    FIELD(current, ET_KSIM_IRQL, KIRQL) = KiPcr.Irql;
    KiPcr.Prcb.CurrentThread = (PKTHREAD)Next;
    KiSwapContext(&FIELD(current, ET_KERNEL_STACK, ULONG64), FIELD(Next, ET_KERNEL_STACK, ULONG64));
    KiPcr.Irql = FIELD(current, ET_KSIM_IRQL, KIRQL);
    KiReap();
}

/* The clock's work, then the next thread's turn: what a thread does while it waits. */
VOID KiSchedule(VOID)
{
    KiDeliverClock();
    if (KiCreatedThreads && KiPcr.Irql < DISPATCH_LEVEL) {
        PUCHAR next = KiNextThread((PUCHAR)KiPcr.Prcb.CurrentThread);
        if (next != (PUCHAR)KiPcr.Prcb.CurrentThread)
            KiSwitchTo(next);
    }
}

static VOID KiUnlinkThread(PUCHAR Thread)
{
    RemoveEntryList((PLIST_ENTRY)(Thread + ET_KTHREAD_LIST_ENTRY));
    RemoveEntryList((PLIST_ENTRY)(Thread + ET_THREAD_LIST_ENTRY));
    FIELD(KiProcessOf(Thread), EP_ACTIVE_THREADS, ULONG)--;
}

NTSTATUS NTAPI PsTerminateSystemThread(NTSTATUS ExitStatus)
{
    PUCHAR thread = (PUCHAR)KiPcr.Prcb.CurrentThread;
    PUCHAR next;
    if (thread == (PUCHAR)KiSystemThread || !KiCreatedThreads)
        return STATUS_INVALID_PARAMETER;
    KiPcr.Irql = PASSIVE_LEVEL;
    PspNotifyThread(thread, FALSE);
    next = KiNextThread(thread);
    FIELD(thread, ET_EXIT_STATUS, NTSTATUS) = ExitStatus;
    FIELD(thread, ET_STATE, UCHAR) = THREAD_STATE_TERMINATED;
    ((DISPATCHER_HEADER *)thread)->SignalState = 1;
    KiUnlinkThread(thread);
    KiCreatedThreads--;
    KiThreadToReap = thread;
    KiSwitchTo(next);
    KeBugCheckEx(0x0000007F, 0x8, (ULONG_PTR)thread, 0, 0);   /* a reaped thread never runs */
}

static VOID KiThreadStartup(VOID)
{
    PUCHAR thread = (PUCHAR)KiPcr.Prcb.CurrentThread;
    KiReap();
    KiPcr.Irql = PASSIVE_LEVEL;
    FIELD(thread, ET_START_ADDRESS, PKSTART_ROUTINE)(FIELD(thread, ET_KSIM_START_CONTEXT, PVOID));
    PsTerminateSystemThread(STATUS_SUCCESS);
}

NTSTATUS NTAPI PsCreateSystemThread(PHANDLE ThreadHandle, ULONG DesiredAccess, PVOID ObjectAttributes,
    HANDLE ProcessHandle, PCLIENT_ID ClientId, PKSTART_ROUTINE StartRoutine, PVOID StartContext)
{
    PUCHAR process = PsInitialSystemProcess;
    PUCHAR thread, stack;
    PULONG64 frame;
    DISPATCHER_HEADER *header;
    (void)ObjectAttributes; (void)ProcessHandle;

    stack = ExAllocatePoolWithTag(NonPagedPool, KERNEL_STACK_SIZE, STACK_TAG);
    if (!stack)
        return STATUS_INSUFFICIENT_RESOURCES;
    thread = ObpCreateThreadObject(NULL);
    if (!thread) {
        ExFreePoolWithTag(stack, STACK_TAG);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    header = (DISPATCHER_HEADER *)thread;
    header->Type = KOBJ_THREAD;
    header->Size = ETHREAD_SIZE / sizeof(LONG) > 0xFF ? 0xFF : ETHREAD_SIZE / sizeof(LONG);
    header->SignalState = 0;
    header->WaitListHead.Flink = header->WaitListHead.Blink = &header->WaitListHead;
    FIELD(thread, ET_INITIAL_STACK, ULONG64) = (ULONG64)stack + KERNEL_STACK_SIZE;
    FIELD(thread, ET_STACK_BASE, ULONG64) = (ULONG64)stack + KERNEL_STACK_SIZE;
    FIELD(thread, ET_STACK_LIMIT, ULONG64) = (ULONG64)stack;
    FIELD(thread, ET_APC_PROCESS, PVOID) = process;
    FIELD(thread, ET_PROCESS, PVOID) = process;
    FIELD(thread, ET_PRIORITY, CHAR) = 8;
    FIELD(thread, ET_STATE, UCHAR) = THREAD_STATE_READY;
    FIELD(thread, ET_CID, ULONG64) = 4;
    FIELD(thread, ET_CID + 8, ULONG64) = KiNextThreadId;
    FIELD(thread, ET_START_ADDRESS, PKSTART_ROUTINE) = StartRoutine;
    FIELD(thread, ET_KSIM_START_CONTEXT, PVOID) = StartContext;
    KiNextThreadId += 4;
    /* The handle is made once the thread has its ids: object callbacks look at them. */
    if (ThreadHandle && !NT_SUCCESS(ObpInsertObjectHandle(thread, DesiredAccess, 0x200, ThreadHandle))) {
        ObDereferenceObject(thread);
        ExFreePoolWithTag(stack, STACK_TAG);
        return STATUS_INSUFFICIENT_RESOURCES;
    }

    /* The first switch to it "returns" into KiThreadStartup with RSP 16n+8, as a call
     * would leave it; a zero return address above ends stack walks there. */
    frame = (PULONG64)((ULONG64)stack + KERNEL_STACK_SIZE - 0x10);
    frame[0] = (ULONG64)KiThreadStartup;
    frame[1] = 0;
    memset((PUCHAR)frame - KI_SWAP_FRAME, 0, KI_SWAP_FRAME);
    FIELD(thread, ET_KERNEL_STACK, ULONG64) = (ULONG64)frame - KI_SWAP_FRAME;

    InsertTailList((PLIST_ENTRY)(process + EP_KTHREAD_LIST_HEAD), (PLIST_ENTRY)(thread + ET_KTHREAD_LIST_ENTRY));
    InsertTailList((PLIST_ENTRY)(process + EP_THREAD_LIST_HEAD), (PLIST_ENTRY)(thread + ET_THREAD_LIST_ENTRY));
    FIELD(process, EP_ACTIVE_THREADS, ULONG)++;
    KiCreatedThreads++;
    if (ClientId) {
        ClientId->UniqueProcess = (HANDLE)(ULONG_PTR)4;
        ClientId->UniqueThread = (HANDLE)(ULONG_PTR)FIELD(thread, ET_CID + 8, ULONG64);
    }
    PspNotifyThread(thread, TRUE);
    return STATUS_SUCCESS;
}

LONG NTAPI KeSetPriorityThread(PKTHREAD Thread, LONG Priority)
{
    LONG old = FIELD(Thread, ET_PRIORITY, CHAR);
    FIELD(Thread, ET_PRIORITY, CHAR) = (CHAR)Priority;
    return old;
}

LONG NTAPI KeQueryPriorityThread(PKTHREAD Thread) { return FIELD(Thread, ET_PRIORITY, CHAR); }
