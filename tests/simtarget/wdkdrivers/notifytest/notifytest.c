/*
 * notifytest.sys - every kind of notification a monitoring driver registers for:
 * process creation and exit (both routine kinds; the Ex routine refuses images named
 * denied.exe), thread creation and exit, image loads, and object callbacks on process
 * and thread handles (the pre routine takes PROCESS_TERMINATE away from user-mode
 * handles to a process, as a driver protecting a process does).  Registration
 * statuses, including the refusals, print as one "notify: register" line; each
 * callback prints one "notify:" line; DriverUnload removes everything.
 */
#include <ntddk.h>

#define PROCESS_TERMINATE_RIGHT 0x0001

/* ntifs.h's; a driver that includes only ntddk.h declares them itself. */
NTKERNELAPI NTSTATUS NTAPI PsLookupProcessByProcessId(HANDLE ProcessId, PEPROCESS *Process);
NTKERNELAPI NTSTATUS NTAPI PsLookupThreadByThreadId(HANDLE ThreadId, PETHREAD *Thread);

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD NotifyUnload;
KSTART_ROUTINE QuickThread;

static PVOID Registration;
static ULONG PostCalls;

static VOID NTAPI ProcessNotify(HANDLE ParentId, HANDLE ProcessId, BOOLEAN Create)
{
    DbgPrint("notify: process %s pid=%u parent=%u\n", Create ? "create" : "exit", (ULONG)(ULONG_PTR)ProcessId,
             (ULONG)(ULONG_PTR)ParentId);
}

static VOID NTAPI ProcessNotifyEx(PEPROCESS Process, HANDLE ProcessId, PPS_CREATE_NOTIFY_INFO CreateInfo)
{
    UNICODE_STRING denied = RTL_CONSTANT_STRING(L"denied.exe");
    UNICODE_STRING tail;
    PEPROCESS found = NULL, parent = NULL;
    NTSTATUS self, up;
    if (!CreateInfo) {
        DbgPrint("notify: process-ex exit pid=%u same=%u\n", (ULONG)(ULONG_PTR)ProcessId,
                 PsGetProcessId(Process) == ProcessId);
        return;
    }
    self = PsLookupProcessByProcessId(ProcessId, &found);
    up = PsLookupProcessByProcessId(CreateInfo->ParentProcessId, &parent);
    DbgPrint("notify: process-ex create pid=%u parent=%u image=%wZ size=%u lookup=%x,%x same=%u parent_pid=%u\n",
             (ULONG)(ULONG_PTR)ProcessId, (ULONG)(ULONG_PTR)CreateInfo->ParentProcessId, CreateInfo->ImageFileName,
             (ULONG)CreateInfo->Size, self, up, found == Process,
             NT_SUCCESS(up) ? (ULONG)(ULONG_PTR)PsGetProcessId(parent) : 0);
    if (NT_SUCCESS(self))
        ObDereferenceObject(found);
    if (NT_SUCCESS(up))
        ObDereferenceObject(parent);
    if (CreateInfo->ImageFileName && CreateInfo->ImageFileName->Length >= denied.Length) {
        tail.Buffer = CreateInfo->ImageFileName->Buffer
                    + (CreateInfo->ImageFileName->Length - denied.Length) / sizeof(WCHAR);
        tail.Length = tail.MaximumLength = denied.Length;
        if (RtlEqualUnicodeString(&tail, &denied, TRUE))
            CreateInfo->CreationStatus = STATUS_ACCESS_DENIED;
    }
}

static VOID NTAPI ThreadNotify(HANDLE ProcessId, HANDLE ThreadId, BOOLEAN Create)
{
    PETHREAD thread = NULL;
    NTSTATUS found = Create ? PsLookupThreadByThreadId(ThreadId, &thread) : STATUS_UNSUCCESSFUL;
    if (Create)
        DbgPrint("notify: thread create pid=%u tid=%u irql=%u lookup=%x same=%u\n", (ULONG)(ULONG_PTR)ProcessId,
                 (ULONG)(ULONG_PTR)ThreadId, KeGetCurrentIrql(), found,
                 NT_SUCCESS(found) && PsGetThreadId(thread) == ThreadId);
    else
        DbgPrint("notify: thread exit pid=%u tid=%u irql=%u\n", (ULONG)(ULONG_PTR)ProcessId,
                 (ULONG)(ULONG_PTR)ThreadId, KeGetCurrentIrql());
    if (NT_SUCCESS(found))
        ObDereferenceObject(thread);
}

static VOID NTAPI ImageNotify(PUNICODE_STRING FullImageName, HANDLE ProcessId, PIMAGE_INFO ImageInfo)
{
    DbgPrint("notify: image pid=%u system=%u size=%x name=%wZ\n", (ULONG)(ULONG_PTR)ProcessId,
             ImageInfo->SystemModeImage, (ULONG)ImageInfo->ImageSize, FullImageName);
}

static VOID NTAPI NotRegistered(HANDLE ProcessId, HANDLE ThreadId, BOOLEAN Create)
{
    UNREFERENCED_PARAMETER(ProcessId);
    UNREFERENCED_PARAMETER(ThreadId);
    UNREFERENCED_PARAMETER(Create);
}

static OB_PREOP_CALLBACK_STATUS NTAPI PreHandle(PVOID Context, POB_PRE_OPERATION_INFORMATION Info)
{
    BOOLEAN process = Info->ObjectType == *PsProcessType;
    UNREFERENCED_PARAMETER(Context);
    if (process && !Info->KernelHandle)
        Info->Parameters->CreateHandleInformation.DesiredAccess &= ~PROCESS_TERMINATE_RIGHT;
    /* Asking for more than the original is ignored: callbacks can only take rights away. */
    if (!process)
        Info->Parameters->CreateHandleInformation.DesiredAccess |= 0x80;
    Info->CallContext = (PVOID)(ULONG_PTR)0x5EED;
    DbgPrint("notify: pre %s kernel=%u op=%u desired=%x\n", process ? "process" : "thread", Info->KernelHandle,
             Info->Operation, Info->Parameters->CreateHandleInformation.OriginalDesiredAccess);
    return OB_PREOP_SUCCESS;
}

static VOID NTAPI PostHandle(PVOID Context, POB_POST_OPERATION_INFORMATION Info)
{
    PostCalls++;
    DbgPrint("notify: post %s kernel=%u granted=%x status=%x context=%x registration=%u\n",
             Info->ObjectType == *PsProcessType ? "process" : "thread", Info->KernelHandle,
             Info->Parameters->CreateHandleInformation.GrantedAccess, Info->ReturnStatus,
             (ULONG)(ULONG_PTR)Info->CallContext, Context == (PVOID)&Registration);
}

VOID QuickThread(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

static NTSTATUS RegisterCallbacks(USHORT Version, PCWSTR Altitude, PVOID *Handle)
{
    OB_OPERATION_REGISTRATION operations[2];
    OB_CALLBACK_REGISTRATION registration;

    RtlZeroMemory(operations, sizeof(operations));
    operations[0].ObjectType = PsProcessType;
    operations[0].Operations = OB_OPERATION_HANDLE_CREATE | OB_OPERATION_HANDLE_DUPLICATE;
    operations[0].PreOperation = PreHandle;
    operations[0].PostOperation = PostHandle;
    operations[1].ObjectType = PsThreadType;
    operations[1].Operations = OB_OPERATION_HANDLE_CREATE;
    operations[1].PreOperation = PreHandle;
    operations[1].PostOperation = PostHandle;
    RtlZeroMemory(&registration, sizeof(registration));
    registration.Version = Version;
    registration.OperationRegistrationCount = 2;
    RtlInitUnicodeString(&registration.Altitude, Altitude);
    registration.RegistrationContext = &Registration;
    registration.OperationRegistration = operations;
    return ObRegisterCallbacks(&registration, Handle);
}

VOID NotifyUnload(PDRIVER_OBJECT DriverObject)
{
    NTSTATUS p, px, t, i, again;
    UNREFERENCED_PARAMETER(DriverObject);
    p = PsSetCreateProcessNotifyRoutine(ProcessNotify, TRUE);
    px = PsSetCreateProcessNotifyRoutineEx(ProcessNotifyEx, TRUE);
    t = PsRemoveCreateThreadNotifyRoutine(ThreadNotify);
    i = PsRemoveLoadImageNotifyRoutine(ImageNotify);
    again = PsRemoveLoadImageNotifyRoutine(ImageNotify);
    if (Registration)
        ObUnRegisterCallbacks(Registration);
    DbgPrint("notify: unload removed=%x,%x,%x,%x again=%x\n", p, px, t, i, again);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    NTSTATUS p, twice, absent, px, t, notthere, i, badversion, noaltitude, ob, collision, created, nopid;
    PVOID other = NULL;
    PEPROCESS nobody = NULL;
    HANDLE thread;

    UNREFERENCED_PARAMETER(RegistryPath);
    DriverObject->DriverUnload = NotifyUnload;
    p = PsSetCreateProcessNotifyRoutine(ProcessNotify, FALSE);
    twice = PsSetCreateProcessNotifyRoutine(ProcessNotify, FALSE);
    absent = PsSetCreateProcessNotifyRoutine((PCREATE_PROCESS_NOTIFY_ROUTINE)NotRegistered, TRUE);
    px = PsSetCreateProcessNotifyRoutineEx(ProcessNotifyEx, FALSE);
    t = PsSetCreateThreadNotifyRoutine(ThreadNotify);
    notthere = PsRemoveCreateThreadNotifyRoutine(NotRegistered);
    i = PsSetLoadImageNotifyRoutine(ImageNotify);
    badversion = RegisterCallbacks(0x0200, L"321000", &other);
    noaltitude = RegisterCallbacks(ObGetFilterVersion(), L"", &other);
    ob = RegisterCallbacks(ObGetFilterVersion(), L"321000", &Registration);
    collision = RegisterCallbacks(ObGetFilterVersion(), L"321000", &other);
    if (!NT_SUCCESS(ob))
        Registration = NULL;
    nopid = PsLookupProcessByProcessId((HANDLE)(ULONG_PTR)0x999, &nobody);
    DbgPrint("notify: register process=%x twice=%x remove_absent=%x process_ex=%x thread=%x remove_absent=%x "
             "image=%x ob_version=%x ob_altitude=%x ob=%x ob_collision=%x lookup_absent=%x\n", p, twice, absent, px,
             t, notthere, i, badversion, noaltitude, ob, collision, nopid);
    created = PsCreateSystemThread(&thread, SYNCHRONIZE, NULL, NULL, NULL, QuickThread, NULL);
    if (NT_SUCCESS(created))
        ZwClose(thread);
    return STATUS_SUCCESS;
}
