/*
 * process.c - the simulated user process: the process a user-mode program
 * (userio.py) runs in, distinct from System, with its own handle table (ob.c), an
 * initial thread, and the calls of the program that are not I/O: starting and ending
 * the process, CreateEvent, WaitForSingleObject on an event, OpenProcess, CloseHandle.
 *
 * One user process exists at a time.  It is started by the program's first request
 * (or an explicit start with its image name) and ends when the program asks; the
 * notify routines see both (notify.c): process creation, then its thread, then the
 * image mapped into it, all at PASSIVE_LEVEL; at the end the thread's exit and the
 * process's exit, in the exiting process's context; then its handles are closed, as
 * at process exit.  While a request of the program is carried out, the thread that
 * runs it is attached to the user process (KTHREAD.ApcState.Process, what
 * PsGetCurrentProcess returns), as a thread of the calling process would be, so
 * dispatch routines see the caller's process and handles.
 *
 * Layouts are Windows 7 SP1 x64's (ki.h offsets); the process and thread are objects
 * of the object manager, so drivers may reference them.  The System process is not an
 * object here and cannot be opened by handle.
 */
#include "obp.h"

#define KSIM_IO_START_PROCESS 6
#define KSIM_IO_EXIT_PROCESS  7
#define KSIM_IO_CREATE_EVENT  8
#define KSIM_IO_WAIT          9
#define KSIM_IO_OPEN_PROCESS  10
#define KSIM_IO_CLOSE_HANDLE  11
#define FIELD(p, off, type) (*(type *)((PUCHAR)(p) + (off)))
#define USER_IMAGE_BASE 0x0000000140000000ULL
#define USER_IMAGE_SIZE 0x10000
#define THREAD_STATE_WAITING 5
#define THREAD_STATE_TERMINATED 4

/* KiSimIoRequest as iomgr2.c lays it out (userio.py _REQUEST_FORMAT). */
typedef struct _KSIM_IO_REQUEST {
    ULONG Sequence, Done, Operation, File, IoControlCode, InputLength, OutputLength;
    NTSTATUS Status;
    ULONG64 Information, InputBuffer, OutputBuffer;
    WCHAR Name[128];
} KSIM_IO_REQUEST;
extern KSIM_IO_REQUEST KiSimIoRequest;
VOID KiSimServiceIo(VOID);
ULONG64 KiQueryInterruptTime(VOID);

PUCHAR PspUserProcess;
static PUCHAR PspUserThread;
static ULONG64 PspNextProcessId = 0x1F4;
static WCHAR PspImagePath[96];
static UNICODE_STRING PspImageName;
static ULONG PspWaitSequence;
static ULONG64 PspWaitDeadline;

BOOLEAN PspInUserProcess(VOID)
{
    return PspUserProcess && (PUCHAR)PsGetCurrentProcess() == PspUserProcess;
}

/* KeStackAttachProcess's effect on what PsGetCurrentProcess answers. */
static PVOID PspAttach(PUCHAR Process)
{
    PUCHAR thread = (PUCHAR)KiPcr.Prcb.CurrentThread;
    PVOID old = FIELD(thread, ET_APC_PROCESS, PVOID);
    FIELD(thread, ET_APC_PROCESS, PVOID) = Process;
    return old;
}

static VOID PspDetach(PVOID Old) { FIELD(KiPcr.Prcb.CurrentThread, ET_APC_PROCESS, PVOID) = Old; }

HANDLE NTAPI PsGetProcessId(PVOID Process) { return FIELD(Process, EP_UNIQUE_PROCESS_ID, HANDLE); }
HANDLE NTAPI PsGetThreadId(PVOID Thread) { return FIELD(Thread, ET_CID + 8, HANDLE); }
HANDLE NTAPI PsGetThreadProcessId(PVOID Thread) { return FIELD(Thread, ET_CID, HANDLE); }

static VOID PspInitHeader(PUCHAR Object, UCHAR Type)
{
    DISPATCHER_HEADER *header = (DISPATCHER_HEADER *)Object;
    header->Type = Type;
    header->SignalState = 0;
    header->WaitListHead.Flink = header->WaitListHead.Blink = &header->WaitListHead;
}

static NTSTATUS PspCreateUserProcess(PCWSTR Name)
{
    static const char volume[] = "\\Device\\HarddiskVolume1\\Users\\Public\\";
    POBJECT_HEADER ph, th;
    PUCHAR process, thread;
    NTSTATUS creation = STATUS_SUCCESS;
    PVOID attached;
    ULONG i, n;

    if (PspUserProcess)
        return STATUS_OBJECT_NAME_COLLISION;
    for (i = 0; volume[i]; i++)
        PspImagePath[i] = volume[i];
    for (n = 0; Name[n] && i < 95; n++)
        PspImagePath[i++] = Name[n];
    PspImagePath[i] = 0;
    RtlInitUnicodeString(&PspImageName, PspImagePath);

    ph = ObpCreate(ObTypeProcess, NULL);
    th = ph ? ObpCreate(ObTypeThread, NULL) : NULL;
    if (!th) {
        if (ph)
            ObpDereference(ph);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    process = OBP_BODY(ph);
    thread = OBP_BODY(th);
    PspInitHeader(process, KOBJ_PROCESS);
    FIELD(process, EP_DIRECTORY_TABLE_BASE, ULONG64) = KiLoaderBlock->Cr3;
    FIELD(process, EP_UNIQUE_PROCESS_ID, ULONG64) = PspNextProcessId;
    for (i = 0; i < 14 && Name[i]; i++)
        FIELD(process, EP_IMAGE_FILE_NAME + i, CHAR) = Name[i] < 0x80 ? (CHAR)Name[i] : '?';
    for (i = 0; i < 2; i++) {
        PLIST_ENTRY head = (PLIST_ENTRY)(process + (i ? EP_THREAD_LIST_HEAD : EP_KTHREAD_LIST_HEAD));
        head->Flink = head->Blink = head;
    }
    PspInitHeader(thread, KOBJ_THREAD);
    FIELD(thread, ET_PROCESS, PVOID) = process;
    FIELD(thread, ET_APC_PROCESS, PVOID) = process;
    FIELD(thread, ET_STATE, UCHAR) = THREAD_STATE_WAITING;
    FIELD(thread, ET_CID, ULONG64) = PspNextProcessId;
    FIELD(thread, ET_CID + 8, ULONG64) = PspNextProcessId + 4;
    FIELD(thread, ET_START_ADDRESS, ULONG64) = USER_IMAGE_BASE + 0x1000;
    InsertTailList((PLIST_ENTRY)(process + EP_KTHREAD_LIST_HEAD), (PLIST_ENTRY)(thread + ET_KTHREAD_LIST_ENTRY));
    InsertTailList((PLIST_ENTRY)(process + EP_THREAD_LIST_HEAD), (PLIST_ENTRY)(thread + ET_THREAD_LIST_ENTRY));
    FIELD(process, EP_ACTIVE_THREADS, ULONG) = 1;

    /* Its id can be looked up from the creation notification on, as in Windows. */
    ObpInitializeUserTable(process);
    PspUserProcess = process;
    PspUserThread = thread;
    PspNotifyProcess(process, TRUE, &PspImageName, &creation);
    if (!NT_SUCCESS(creation)) {
        PspUserProcess = NULL;
        PspUserThread = NULL;
        FIELD(process, EP_OBJECT_TABLE, PVOID) = NULL;
        ObpDereference(th);
        ObpDereference(ph);
        return creation;
    }
    PspNextProcessId += 8;
    InsertTailList(&PsActiveProcessHead, (PLIST_ENTRY)(process + EP_ACTIVE_PROCESS_LINKS));
    PspNotifyThread(thread, TRUE);
    attached = PspAttach(process);
    PspNotifyImage(&PspImageName, PsGetProcessId(process), (PVOID)USER_IMAGE_BASE, USER_IMAGE_SIZE, FALSE);
    PspDetach(attached);
    return STATUS_SUCCESS;
}

static NTSTATUS PspExitUserProcess(VOID)
{
    PUCHAR process = PspUserProcess, thread = PspUserThread;
    PVOID attached;

    if (!process)
        return STATUS_INVALID_PARAMETER;
    attached = PspAttach(process);
    PspNotifyThread(thread, FALSE);
    PspNotifyProcess(process, FALSE, NULL, NULL);
    ObpCloseUserHandles();
    FIELD(process, EP_OBJECT_TABLE, PVOID) = NULL;
    PspDetach(attached);
    FIELD(thread, ET_STATE, UCHAR) = THREAD_STATE_TERMINATED;
    ((DISPATCHER_HEADER *)thread)->SignalState = 1;
    ((DISPATCHER_HEADER *)process)->SignalState = 1;
    FIELD(process, EP_ACTIVE_THREADS, ULONG) = 0;
    RemoveEntryList((PLIST_ENTRY)(process + EP_ACTIVE_PROCESS_LINKS));
    InitializeListHead((PLIST_ENTRY)(process + EP_ACTIVE_PROCESS_LINKS));
    PspUserProcess = NULL;
    PspUserThread = NULL;
    ObpDereference(OBP_HEADER(thread));
    ObpDereference(OBP_HEADER(process));
    return STATUS_SUCCESS;
}

/* System and its first thread are not objects here and never go away: they are handed
 * out uncounted (ob.c does not count references to them). */
NTSTATUS NTAPI PsLookupProcessByProcessId(HANDLE ProcessId, PVOID *Process)
{
    if (ProcessId == (HANDLE)(ULONG_PTR)4) {
        *Process = PsInitialSystemProcess;
        return STATUS_SUCCESS;
    }
    if (!PspUserProcess || ProcessId != PsGetProcessId(PspUserProcess))
        return STATUS_INVALID_PARAMETER;
    OBP_HEADER(PspUserProcess)->PointerCount++;
    *Process = PspUserProcess;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI PsLookupThreadByThreadId(HANDLE ThreadId, PVOID *Thread)
{
    PUCHAR processes[2] = { PsInitialSystemProcess, PspUserProcess };
    ULONG i;
    for (i = 0; i < 2 && processes[i]; i++) {
        PLIST_ENTRY head = (PLIST_ENTRY)(processes[i] + EP_THREAD_LIST_HEAD), link;
        for (link = head->Flink; link != head; link = link->Flink) {
            PUCHAR thread = (PUCHAR)link - ET_THREAD_LIST_ENTRY;
            if (PsGetThreadId(thread) != ThreadId)
                continue;
            if (thread != (PUCHAR)KiSystemThread)
                OBP_HEADER(thread)->PointerCount++;
            *Thread = thread;
            return STATUS_SUCCESS;
        }
    }
    return STATUS_INVALID_PARAMETER;
}

NTSTATUS NTAPI ZwOpenProcess(PHANDLE ProcessHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
                             PCLIENT_ID ClientId)
{
    if (!ProcessHandle || !ClientId)
        return STATUS_INVALID_PARAMETER;
    *ProcessHandle = NULL;
    if (!PspUserProcess || ClientId->UniqueProcess != PsGetProcessId(PspUserProcess))
        return STATUS_INVALID_CID;
    return ObpInsertObjectHandle(PspUserProcess, DesiredAccess, ObjectAttributes ? ObjectAttributes->Attributes : 0,
                                 ProcessHandle);
}

/* WaitForSingleObject(event, timeout ms) of the program: answered on each entry until
 * the event is signalled (WAIT_OBJECT_0) or the guest clock passes the timeout. */
static NTSTATUS PspWait(HANDLE Handle, ULONG Milliseconds)
{
    PKEVENT event;
    NTSTATUS status = ObReferenceObjectByHandle(Handle, SYNCHRONIZE, ExEventObjectType, UserMode,
                                                (PVOID *)&event, NULL);
    if (!NT_SUCCESS(status))
        return status;
    if (PspWaitSequence != KiSimIoRequest.Sequence) {
        PspWaitSequence = KiSimIoRequest.Sequence;
        PspWaitDeadline = KiQueryInterruptTime() + (ULONG64)Milliseconds * 10000;
    }
    if (event->Header.SignalState) {
        if (event->Header.Type == KOBJ_EVENT_SYNCHRONIZATION)
            event->Header.SignalState = 0;
        status = STATUS_SUCCESS;
    } else {
        status = KiQueryInterruptTime() >= PspWaitDeadline ? STATUS_TIMEOUT : STATUS_PENDING;
    }
    ObDereferenceObject(event);
    return status;
}

/* The program's calls other than I/O; FALSE when the request is I/O. */
static BOOLEAN PspServiceRequest(VOID)
{
    KSIM_IO_REQUEST *r = &KiSimIoRequest;
    HANDLE handle = (HANDLE)(ULONG_PTR)r->File;
    NTSTATUS status;
    PVOID attached;

    if (r->Operation < KSIM_IO_START_PROCESS || r->Done == r->Sequence)
        return FALSE;
    r->Information = 0;
    if (!PspUserProcess && r->Operation > KSIM_IO_EXIT_PROCESS)
        PspCreateUserProcess(L"ksimuser.exe");
    if (r->Operation == KSIM_IO_START_PROCESS) {
        status = PspCreateUserProcess(r->Name[0] ? r->Name : L"ksimuser.exe");
        if (NT_SUCCESS(status))
            r->Information = FIELD(PspUserProcess, EP_UNIQUE_PROCESS_ID, ULONG64);
    } else if (r->Operation == KSIM_IO_EXIT_PROCESS) {
        status = PspExitUserProcess();
    } else if (!PspUserProcess) {
        status = STATUS_INVALID_PARAMETER;
    } else {
        attached = PspAttach(PspUserProcess);
        switch (r->Operation) {
        case KSIM_IO_CREATE_EVENT: {
            OBJECT_ATTRIBUTES attributes;
            POBJECT_HEADER h = ObpCreate(ObTypeEvent, NULL);
            memset(&attributes, 0, sizeof(attributes));
            if (!h) {
                status = STATUS_INSUFFICIENT_RESOURCES;
                break;
            }
            KeInitializeEvent(OBP_BODY(h), r->InputLength ? SynchronizationEvent : NotificationEvent, FALSE);
            h->PointerCount--;
            status = ObpInsertObjectHandle(OBP_BODY(h), r->IoControlCode, 0, &handle);
            r->File = (ULONG)(ULONG_PTR)handle;
            break;
        }
        case KSIM_IO_WAIT:
            status = PspWait(handle, r->IoControlCode);
            break;
        case KSIM_IO_OPEN_PROCESS: {
            ACCESS_MASK granted = 0;
            if (r->InputLength && r->InputLength != FIELD(PspUserProcess, EP_UNIQUE_PROCESS_ID, ULONG64)) {
                status = STATUS_INVALID_CID;
                break;
            }
            status = ObpInsertObjectHandle(PspUserProcess, r->IoControlCode, 0, &handle);
            if (NT_SUCCESS(status))
                ObpLookupHandle(handle, UserMode, &granted);
            r->File = (ULONG)(ULONG_PTR)handle;
            r->IoControlCode = granted;
            break;
        }
        case KSIM_IO_CLOSE_HANDLE:
            status = ObpLookupHandle(handle, UserMode, NULL) ? ZwClose(handle) : STATUS_INVALID_HANDLE;
            break;
        default:
            status = STATUS_INVALID_PARAMETER;
            break;
        }
        PspDetach(attached);
    }
    r->Status = status;
    if (status != STATUS_PENDING)
        r->Done = r->Sequence;
    return TRUE;
}

/* Where the machine's KiSimIoEntry lands: the program's own calls here, its I/O in
 * iomgr2.c, attached to its process (started on the program's first request). */
VOID PspServiceUserIo(VOID)
{
    PVOID attached;
    if (PspServiceRequest())
        return;
    if (!PspUserProcess && KiSimIoRequest.Done != KiSimIoRequest.Sequence)
        PspCreateUserProcess(L"ksimuser.exe");
    attached = PspUserProcess ? PspAttach(PspUserProcess) : NULL;
    KiSimServiceIo();
    if (attached)
        PspDetach(attached);
}
