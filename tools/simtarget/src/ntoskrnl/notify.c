/*
 * notify.c - the routines drivers register to hear about processes, threads and
 * images, and the object callbacks on process and thread handles.
 *
 * Rules from the WDK reference pages (registration at PASSIVE_LEVEL, ObRegisterCallbacks
 * up to APC_LEVEL; not checked here):
 * - PsSetCreateProcessNotifyRoutine(Ex): up to 64 routines of either kind; registering
 *   one again, a full table, or removing one that is not registered is
 *   STATUS_INVALID_PARAMETER.  The Ex routine, like ObRegisterCallbacks, must lie in an
 *   image linked with /INTEGRITYCHECK (IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY), else
 *   STATUS_ACCESS_DENIED.  On creation an Ex routine gets PS_CREATE_NOTIFY_INFO and may
 *   set CreationStatus to an error, which refuses the process; on exit it gets NULL.
 * - PsSetCreateThreadNotifyRoutine / PsSetLoadImageNotifyRoutine: up to 64 each, a
 *   full table is STATUS_INSUFFICIENT_RESOURCES; PsRemove... of a routine that is not
 *   registered is STATUS_PROCEDURE_NOT_FOUND.
 * - Image notification: drivers loaded after registration (ProcessId 0,
 *   IMAGE_INFO.SystemModeImage set) and the user process's image (process.c).
 * - ObRegisterCallbacks: Version OB_FLT_REGISTRATION_VERSION, at least one operation,
 *   a non-empty altitude no other registration uses (else
 *   STATUS_FLT_INSTANCE_ALTITUDE_COLLISION), object types PsProcessType or PsThreadType,
 *   each operation with a pre or post routine, else STATUS_INVALID_PARAMETER.  Pre
 *   routines see OB_OPERATION_HANDLE_CREATE with the desired access and may only take
 *   rights away; post routines see the granted access and the pre routine's CallContext.
 *   Handle duplication does not exist here.
 *
 * Who calls: thread.c (system threads: create and exit, in System), process.c (the
 * user process: creation, its thread, its image; exit), io.c (driver loads), ob.c
 * (every process or thread handle made).  A routine an unloaded driver left
 * registered is called at its stale address; the fault there is bug check 0xCE,
 * DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS (ke.c), as on Windows.
 */
#include "obp.h"

#define PSP_MAX_ROUTINES 64
#define IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY 0x0080
#define OB_FLT_REGISTRATION_VERSION 0x0100
#define OB_OPERATION_HANDLE_CREATE 1
#define OB_OPERATION_HANDLE_DUPLICATE 2
#define STATUS_FLT_INSTANCE_ALTITUDE_COLLISION ((NTSTATUS)0xC01C0011L)
#define EP_INHERITED_FROM_UNIQUE_PROCESS_ID 0x290
#define IMAGE_ADDRESSING_MODE_32BIT 3
#define TAG_CALLBACK 'bCbO'
#define FIELD(p, off, type) (*(type *)((PUCHAR)(p) + (off)))

typedef struct _PS_CREATE_NOTIFY_INFO {
    SIZE_T Size;
    ULONG Flags;                       /* FileOpenNameAvailable: bit 0 */
    HANDLE ParentProcessId;
    CLIENT_ID CreatingThreadId;
    PVOID FileObject;
    PCUNICODE_STRING ImageFileName;
    PCUNICODE_STRING CommandLine;
    NTSTATUS CreationStatus;
} PS_CREATE_NOTIFY_INFO;
STATIC_ASSERT(sizeof(PS_CREATE_NOTIFY_INFO) == 0x48);

typedef struct _IMAGE_INFO {
    ULONG Properties;                  /* ImageAddressingMode: 8 bits, SystemModeImage: bit 8 */
    PVOID ImageBase;
    ULONG ImageSelector;
    SIZE_T ImageSize;
    ULONG ImageSectionNumber;
} IMAGE_INFO;
STATIC_ASSERT(sizeof(IMAGE_INFO) == 0x28);

typedef VOID (NTAPI *PCREATE_PROCESS_NOTIFY_ROUTINE)(HANDLE ParentId, HANDLE ProcessId, BOOLEAN Create);
typedef VOID (NTAPI *PCREATE_PROCESS_NOTIFY_ROUTINE_EX)(PVOID Process, HANDLE ProcessId,
                                                        PS_CREATE_NOTIFY_INFO *CreateInfo);
typedef VOID (NTAPI *PCREATE_THREAD_NOTIFY_ROUTINE)(HANDLE ProcessId, HANDLE ThreadId, BOOLEAN Create);
typedef VOID (NTAPI *PLOAD_IMAGE_NOTIFY_ROUTINE)(PUNICODE_STRING FullImageName, HANDLE ProcessId,
                                                 IMAGE_INFO *ImageInfo);

/* wdm.h's object callback structures (x64). */
typedef struct _OB_PRE_OPERATION_PARAMETERS {
    ACCESS_MASK DesiredAccess, OriginalDesiredAccess;
    PVOID SourceProcess, TargetProcess;            /* duplication only */
} OB_PRE_OPERATION_PARAMETERS;
typedef struct _OB_PRE_OPERATION_INFORMATION {
    ULONG Operation;
    ULONG Flags;                       /* KernelHandle: bit 0 */
    PVOID Object;
    PVOID ObjectType;
    PVOID CallContext;
    OB_PRE_OPERATION_PARAMETERS *Parameters;
} OB_PRE_OPERATION_INFORMATION;
STATIC_ASSERT(sizeof(OB_PRE_OPERATION_INFORMATION) == 0x28);
typedef struct _OB_POST_OPERATION_INFORMATION {
    ULONG Operation;
    ULONG Flags;
    PVOID Object;
    PVOID ObjectType;
    PVOID CallContext;
    NTSTATUS ReturnStatus;
    ACCESS_MASK *Parameters;           /* OB_POST_CREATE_HANDLE_INFORMATION: GrantedAccess */
} OB_POST_OPERATION_INFORMATION;
STATIC_ASSERT(sizeof(OB_POST_OPERATION_INFORMATION) == 0x30);
typedef ULONG (NTAPI *POB_PRE_OPERATION_CALLBACK)(PVOID Context, OB_PRE_OPERATION_INFORMATION *Info);
typedef VOID (NTAPI *POB_POST_OPERATION_CALLBACK)(PVOID Context, OB_POST_OPERATION_INFORMATION *Info);
typedef struct _OB_OPERATION_REGISTRATION {
    OBJECT_TYPE **ObjectType;
    ULONG Operations;
    POB_PRE_OPERATION_CALLBACK PreOperation;
    POB_POST_OPERATION_CALLBACK PostOperation;
} OB_OPERATION_REGISTRATION;
typedef struct _OB_CALLBACK_REGISTRATION {
    USHORT Version;
    USHORT OperationRegistrationCount;
    UNICODE_STRING Altitude;
    PVOID RegistrationContext;
    OB_OPERATION_REGISTRATION *OperationRegistration;
} OB_CALLBACK_REGISTRATION;

/* One ObRegisterCallbacks registration: its operations and altitude follow it. */
typedef struct _OBP_REGISTRATION {
    struct _OBP_REGISTRATION *Next;
    PVOID Context;
    ULONG Count;
    UNICODE_STRING Altitude;
    OB_OPERATION_REGISTRATION Operations[1];
} OBP_REGISTRATION;

static struct { PVOID Routine; BOOLEAN Ex; } PspProcessRoutines[PSP_MAX_ROUTINES];
static PVOID PspThreadRoutines[PSP_MAX_ROUTINES];
static PVOID PspImageRoutines[PSP_MAX_ROUTINES];
static OBP_REGISTRATION *ObpRegistrations;

/* MmVerifyCallbackFunction's rule: the routine lies in a loaded image linked with
 * /INTEGRITYCHECK. */
static BOOLEAN PspInIntegrityImage(PVOID Routine)
{
    PLIST_ENTRY link;
    for (link = PsLoadedModuleList.Flink; link != &PsLoadedModuleList; link = link->Flink) {
        PKLDR_DATA_TABLE_ENTRY entry = CONTAINING_RECORD(link, KLDR_DATA_TABLE_ENTRY, InLoadOrderLinks);
        PUCHAR base = entry->DllBase;
        if ((PUCHAR)Routine >= base && (PUCHAR)Routine < base + entry->SizeOfImage) {
            LONG headers = *(LONG *)(base + 0x3C);
            return (*(USHORT *)(base + headers + 0x5E) & IMAGE_DLLCHARACTERISTICS_FORCE_INTEGRITY) != 0;
        }
    }
    return FALSE;
}

static NTSTATUS PspSetProcessRoutine(PVOID Routine, BOOLEAN Ex, BOOLEAN Remove)
{
    ULONG i, free = PSP_MAX_ROUTINES;
    for (i = 0; i < PSP_MAX_ROUTINES; i++) {
        if (PspProcessRoutines[i].Routine == Routine && PspProcessRoutines[i].Ex == Ex && Routine) {
            if (!Remove)
                return STATUS_INVALID_PARAMETER;
            PspProcessRoutines[i].Routine = NULL;
            return STATUS_SUCCESS;
        }
        if (!PspProcessRoutines[i].Routine && free == PSP_MAX_ROUTINES)
            free = i;
    }
    if (Remove || !Routine || free == PSP_MAX_ROUTINES)
        return STATUS_INVALID_PARAMETER;
    if (Ex && !PspInIntegrityImage(Routine))
        return STATUS_ACCESS_DENIED;
    PspProcessRoutines[free].Routine = Routine;
    PspProcessRoutines[free].Ex = Ex;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI PsSetCreateProcessNotifyRoutine(PCREATE_PROCESS_NOTIFY_ROUTINE NotifyRoutine, BOOLEAN Remove)
{
    return PspSetProcessRoutine((PVOID)NotifyRoutine, FALSE, Remove);
}

NTSTATUS NTAPI PsSetCreateProcessNotifyRoutineEx(PCREATE_PROCESS_NOTIFY_ROUTINE_EX NotifyRoutine, BOOLEAN Remove)
{
    return PspSetProcessRoutine((PVOID)NotifyRoutine, TRUE, Remove);
}

static NTSTATUS PspAdd(PVOID *Table, PVOID Routine)
{
    ULONG i;
    for (i = 0; i < PSP_MAX_ROUTINES; i++)
        if (!Table[i]) {
            Table[i] = Routine;
            return STATUS_SUCCESS;
        }
    return STATUS_INSUFFICIENT_RESOURCES;
}

static NTSTATUS PspRemoveRoutine(PVOID *Table, PVOID Routine)
{
    ULONG i;
    for (i = 0; i < PSP_MAX_ROUTINES; i++)
        if (Table[i] == Routine && Routine) {
            Table[i] = NULL;
            return STATUS_SUCCESS;
        }
    return STATUS_PROCEDURE_NOT_FOUND;
}

NTSTATUS NTAPI PsSetCreateThreadNotifyRoutine(PCREATE_THREAD_NOTIFY_ROUTINE NotifyRoutine)
{
    return PspAdd(PspThreadRoutines, (PVOID)NotifyRoutine);
}

NTSTATUS NTAPI PsRemoveCreateThreadNotifyRoutine(PCREATE_THREAD_NOTIFY_ROUTINE NotifyRoutine)
{
    return PspRemoveRoutine(PspThreadRoutines, (PVOID)NotifyRoutine);
}

NTSTATUS NTAPI PsSetLoadImageNotifyRoutine(PLOAD_IMAGE_NOTIFY_ROUTINE NotifyRoutine)
{
    return PspAdd(PspImageRoutines, (PVOID)NotifyRoutine);
}

NTSTATUS NTAPI PsRemoveLoadImageNotifyRoutine(PLOAD_IMAGE_NOTIFY_ROUTINE NotifyRoutine)
{
    return PspRemoveRoutine(PspImageRoutines, (PVOID)NotifyRoutine);
}

VOID PspNotifyProcess(PUCHAR Process, BOOLEAN Create, PUNICODE_STRING ImageName, NTSTATUS *CreationStatus)
{
    PS_CREATE_NOTIFY_INFO info;
    HANDLE pid = PsGetProcessId(Process);
    ULONG i;

    if (Create)
        FIELD(Process, EP_INHERITED_FROM_UNIQUE_PROCESS_ID, HANDLE) = PsGetCurrentProcessId();
    memset(&info, 0, sizeof(info));
    info.Size = sizeof(info);
    info.Flags = 1;
    info.ParentProcessId = FIELD(Process, EP_INHERITED_FROM_UNIQUE_PROCESS_ID, HANDLE);
    info.CreatingThreadId.UniqueProcess = PsGetCurrentProcessId();
    info.CreatingThreadId.UniqueThread = PsGetCurrentThreadId();
    info.ImageFileName = ImageName;
    info.CommandLine = ImageName;
    for (i = 0; i < PSP_MAX_ROUTINES; i++) {
        PVOID routine = PspProcessRoutines[i].Routine;
        if (!routine)
            continue;
        if (PspProcessRoutines[i].Ex)
            ((PCREATE_PROCESS_NOTIFY_ROUTINE_EX)routine)(Process, pid, Create ? &info : NULL);
        else
            ((PCREATE_PROCESS_NOTIFY_ROUTINE)routine)(info.ParentProcessId, pid, Create);
    }
    if (CreationStatus)
        *CreationStatus = info.CreationStatus;
}

VOID PspNotifyThread(PUCHAR Thread, BOOLEAN Create)
{
    ULONG i;
    for (i = 0; i < PSP_MAX_ROUTINES; i++)
        if (PspThreadRoutines[i])
            ((PCREATE_THREAD_NOTIFY_ROUTINE)PspThreadRoutines[i])(FIELD(Thread, ET_CID, HANDLE),
                                                                  FIELD(Thread, ET_CID + 8, HANDLE), Create);
}

VOID PspNotifyImage(PUNICODE_STRING Name, HANDLE ProcessId, PVOID Base, SIZE_T Size, BOOLEAN System)
{
    IMAGE_INFO info;
    ULONG i;
    for (i = 0; i < PSP_MAX_ROUTINES; i++) {
        if (!PspImageRoutines[i])
            continue;
        /* Each routine gets its own copy: one may write to it. */
        memset(&info, 0, sizeof(info));
        info.Properties = IMAGE_ADDRESSING_MODE_32BIT | (System ? 0x100 : 0);
        info.ImageBase = Base;
        info.ImageSize = Size;
        ((PLOAD_IMAGE_NOTIFY_ROUTINE)PspImageRoutines[i])(Name, ProcessId, &info);
    }
}

/* io.c: a driver image is in memory and about to run its DriverEntry. */
VOID PspNotifyDriverLoad(PKLDR_DATA_TABLE_ENTRY Entry)
{
    PspNotifyImage(&Entry->FullDllName, NULL, Entry->DllBase, Entry->SizeOfImage, TRUE);
}

/* ---- Object callbacks ---- */

USHORT NTAPI ObGetFilterVersion(VOID) { return OB_FLT_REGISTRATION_VERSION; }

static NTSTATUS ObpCheckRegistration(OB_CALLBACK_REGISTRATION *Registration)
{
    OBP_REGISTRATION *r;
    ULONG i;
    if (!Registration || Registration->Version != OB_FLT_REGISTRATION_VERSION
        || !Registration->OperationRegistrationCount || !Registration->OperationRegistration
        || !Registration->Altitude.Length || !Registration->Altitude.Buffer)
        return STATUS_INVALID_PARAMETER;
    for (i = 0; i < Registration->OperationRegistrationCount; i++) {
        OB_OPERATION_REGISTRATION *op = &Registration->OperationRegistration[i];
        OBJECT_TYPE *type = op->ObjectType ? *op->ObjectType : NULL;
        if ((type != PsProcessType && type != PsThreadType)
            || !(op->Operations & (OB_OPERATION_HANDLE_CREATE | OB_OPERATION_HANDLE_DUPLICATE))
            || (!op->PreOperation && !op->PostOperation))
            return STATUS_INVALID_PARAMETER;
        if ((op->PreOperation && !PspInIntegrityImage((PVOID)op->PreOperation))
            || (op->PostOperation && !PspInIntegrityImage((PVOID)op->PostOperation)))
            return STATUS_ACCESS_DENIED;
    }
    for (r = ObpRegistrations; r; r = r->Next)
        if (RtlCompareUnicodeString(&r->Altitude, &Registration->Altitude, FALSE) == 0)
            return STATUS_FLT_INSTANCE_ALTITUDE_COLLISION;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI ObRegisterCallbacks(OB_CALLBACK_REGISTRATION *CallbackRegistration, PVOID *RegistrationHandle)
{
    OBP_REGISTRATION *r;
    ULONG count;
    SIZE_T size;
    NTSTATUS status = ObpCheckRegistration(CallbackRegistration);

    if (!NT_SUCCESS(status))
        return status;
    if (!RegistrationHandle)
        return STATUS_INVALID_PARAMETER;
    count = CallbackRegistration->OperationRegistrationCount;
    size = sizeof(OBP_REGISTRATION) + count * sizeof(OB_OPERATION_REGISTRATION)
         + CallbackRegistration->Altitude.Length;
    r = ExAllocatePoolWithTag(NonPagedPool, size, TAG_CALLBACK);
    if (!r)
        return STATUS_INSUFFICIENT_RESOURCES;
    memset(r, 0, size);
    r->Context = CallbackRegistration->RegistrationContext;
    r->Count = count;
    memcpy(r->Operations, CallbackRegistration->OperationRegistration, count * sizeof(OB_OPERATION_REGISTRATION));
    r->Altitude.Buffer = (PWSTR)&r->Operations[count];
    r->Altitude.Length = r->Altitude.MaximumLength = CallbackRegistration->Altitude.Length;
    memcpy(r->Altitude.Buffer, CallbackRegistration->Altitude.Buffer, r->Altitude.Length);
    r->Next = ObpRegistrations;
    ObpRegistrations = r;
    *RegistrationHandle = r;
    return STATUS_SUCCESS;
}

VOID NTAPI ObUnRegisterCallbacks(PVOID RegistrationHandle)
{
    OBP_REGISTRATION **link;
    for (link = &ObpRegistrations; *link; link = &(*link)->Next)
        if (*link == RegistrationHandle) {
            *link = (*link)->Next;
            ExFreePoolWithTag(RegistrationHandle, TAG_CALLBACK);
            return;
        }
}

static OBJECT_TYPE *ObpTypeOf(POBJECT_HEADER Header)
{
    return OBP_TYPE(Header) == ObTypeProcess ? PsProcessType : PsThreadType;
}

ACCESS_MASK ObpPreCreateHandle(POBJECT_HEADER Header, BOOLEAN KernelHandle, ACCESS_MASK Desired,
                               PVOID *Contexts)
{
    OB_PRE_OPERATION_PARAMETERS parameters;
    OB_PRE_OPERATION_INFORMATION info;
    OBP_REGISTRATION *r;
    ACCESS_MASK original = Desired;
    ULONG i, k = 0;

    for (r = ObpRegistrations; r; r = r->Next)
        for (i = 0; i < r->Count && k < OBP_MAX_CALLBACK_OPERATIONS; i++, k++) {
            OB_OPERATION_REGISTRATION *op = &r->Operations[i];
            Contexts[k] = NULL;
            if (*op->ObjectType != ObpTypeOf(Header) || !(op->Operations & OB_OPERATION_HANDLE_CREATE)
                || !op->PreOperation)
                continue;
            memset(&parameters, 0, sizeof(parameters));
            parameters.DesiredAccess = Desired;
            parameters.OriginalDesiredAccess = original;
            memset(&info, 0, sizeof(info));
            info.Operation = OB_OPERATION_HANDLE_CREATE;
            info.Flags = KernelHandle ? 1 : 0;
            info.Object = OBP_BODY(Header);
            info.ObjectType = ObpTypeOf(Header);
            info.Parameters = &parameters;
            op->PreOperation(r->Context, &info);
            /* A callback may only take rights away. */
            Desired = parameters.DesiredAccess & original;
            Contexts[k] = info.CallContext;
        }
    return Desired;
}

VOID ObpPostCreateHandle(POBJECT_HEADER Header, BOOLEAN KernelHandle, ACCESS_MASK Granted,
                         NTSTATUS Status, PVOID *Contexts)
{
    OB_POST_OPERATION_INFORMATION info;
    OBP_REGISTRATION *r;
    ACCESS_MASK granted;
    ULONG i, k = 0;

    for (r = ObpRegistrations; r; r = r->Next)
        for (i = 0; i < r->Count && k < OBP_MAX_CALLBACK_OPERATIONS; i++, k++) {
            OB_OPERATION_REGISTRATION *op = &r->Operations[i];
            if (*op->ObjectType != ObpTypeOf(Header) || !(op->Operations & OB_OPERATION_HANDLE_CREATE)
                || !op->PostOperation)
                continue;
            granted = Granted;
            memset(&info, 0, sizeof(info));
            info.Operation = OB_OPERATION_HANDLE_CREATE;
            info.Flags = KernelHandle ? 1 : 0;
            info.Object = OBP_BODY(Header);
            info.ObjectType = ObpTypeOf(Header);
            info.CallContext = Contexts[k];
            info.ReturnStatus = Status;
            info.Parameters = &granted;
            op->PostOperation(r->Context, &info);
        }
}
