/*
 * ob.c - a minimal object manager: named objects with reference counts, the kernel's
 * handle table and the simulated user process's (obp.h), enough for the
 * handle-returning routines drivers call (ZwCreateFile, ZwOpenKey, ZwOpenSection,
 * ZwCreateDirectoryObject, IoCreateNotificationEvent, IoCreateSynchronizationEvent,
 * PsCreateSystemThread, ZwOpenProcess), ObReferenceObjectByHandle and ZwClose.
 *
 * Keys, sections and directories have no backing store: they open whatever the name
 * says.  Files under \??\C:, \DosDevices\C: and \SystemRoot are the host's (file.c).
 * A handle is made in the kernel table for OBJ_KERNEL_HANDLE or when the caller runs
 * in the System process, otherwise in the current (user) process's table, as the
 * ZwCreateFile documentation warns.  ObReferenceObjectByHandle follows its reference
 * page: a user-mode caller is refused a kernel handle (STATUS_INVALID_HANDLE) and any
 * access the handle was not granted (STATUS_ACCESS_DENIED); a kernel-mode caller's
 * access is not checked; the wrong type is STATUS_OBJECT_TYPE_MISMATCH.  Process and
 * thread handles go through the ObRegisterCallbacks callbacks (notify.c).
 */
#include "obp.h"

#define HANDLE_TABLE_SIZE 256
#define FILE_CREATED 2
#define FILE_OPENED 1

static KSIM_OBJECT_TYPE ObpEventType = { ObTypeEvent };
static KSIM_OBJECT_TYPE ObpThreadType = { ObTypeThread };
static KSIM_OBJECT_TYPE ObpProcessType = { ObTypeProcess };
KSIM_OBJECT_TYPE *ExEventObjectType = &ObpEventType;
KSIM_OBJECT_TYPE *PsThreadType = &ObpThreadType;
KSIM_OBJECT_TYPE *PsProcessType = &ObpProcessType;

STATIC_ASSERT(sizeof(KSIM_OBJECT_HEADER) % 16 == 0);

typedef struct _OBP_HANDLE {
    PKSIM_OBJECT_HEADER Object;
    ACCESS_MASK GrantedAccess;
    ULONG Attributes;
} OBP_HANDLE;

static OBP_HANDLE ObpKernelTable[HANDLE_TABLE_SIZE];
static OBP_HANDLE ObpUserTable[HANDLE_TABLE_SIZE];
static PKSIM_OBJECT_HEADER ObpNamedObjects;

static const ULONG ObpTypeTags[ObTypeMax] = { 0, 'nevE', 'eliF', ' yeK', 'tceS', 'eriD', 'erhT', 'corP',
                                              'eliF' };
static const ULONG ObpBodySizes[ObTypeMax] = { 0, sizeof(KEVENT), 0x40, 0x20, 0x20, 0x20, ETHREAD_SIZE,
                                               EPROCESS_SIZE, 0xD8 };
/* GENERIC_READ, _WRITE, _EXECUTE, _ALL per type (the types' GENERIC_MAPPINGs in wdm.h terms). */
static const ACCESS_MASK ObpGenericMapping[ObTypeMax][4] = {
    { 0, 0, 0, 0 },
    { 0x00020001, 0x00020002, 0x00120000, 0x001F0003 },     /* event */
    { 0x00120089, 0x00120116, 0x001200A0, 0x001F01FF },     /* file */
    { 0x00020019, 0x00020006, 0x00020019, 0x000F003F },     /* key */
    { 0x00020005, 0x00020002, 0x00020008, 0x000F001F },     /* section */
    { 0x00020003, 0x0002000C, 0x00020003, 0x000F000F },     /* directory */
    { 0x00020048, 0x00020037, 0x00120000, 0x001FFFFF },     /* thread */
    { 0x00020410, 0x00020BEA, 0x00120000, 0x001FFFFF },     /* process */
    { 0x00120089, 0x00120116, 0x001200A0, 0x001F01FF },     /* a device's file object */
};

VOID IopCloseDeviceFile(PVOID FileObject);

VOID KiInitializeObjects(VOID)
{
    memset(ObpKernelTable, 0, sizeof(ObpKernelTable));
    memset(ObpUserTable, 0, sizeof(ObpUserTable));
    ObpNamedObjects = NULL;
}

ACCESS_MASK ObpMapGeneric(ULONG Type, ACCESS_MASK Access)
{
    const ACCESS_MASK *map = ObpGenericMapping[Type < ObTypeMax ? Type : 0];
    ACCESS_MASK mapped = Access & ~(GENERIC_READ | GENERIC_WRITE | GENERIC_EXECUTE | GENERIC_ALL | MAXIMUM_ALLOWED);
    if (Access & GENERIC_READ)
        mapped |= map[0];
    if (Access & GENERIC_WRITE)
        mapped |= map[1];
    if (Access & GENERIC_EXECUTE)
        mapped |= map[2];
    if (Access & (GENERIC_ALL | MAXIMUM_ALLOWED))
        mapped |= map[3];
    return mapped;
}

static PKSIM_OBJECT_HEADER ObpLookup(PUNICODE_STRING Name, ULONG Type)
{
    PKSIM_OBJECT_HEADER h;
    if (!Name || !Name->Length)
        return NULL;
    for (h = ObpNamedObjects; h; h = h->NextNamed)
        if (h->Type == Type && RtlCompareUnicodeString(&h->Name, Name, TRUE) == 0)
            return h;
    return NULL;
}

PKSIM_OBJECT_HEADER ObpCreate(ULONG Type, PUNICODE_STRING Name)
{
    SIZE_T size = sizeof(KSIM_OBJECT_HEADER) + ObpBodySizes[Type];
    PKSIM_OBJECT_HEADER h = ExAllocatePoolWithTag(NonPagedPool, size, ObpTypeTags[Type]);
    if (!h)
        return NULL;
    memset(h, 0, size);
    h->Type = Type;
    h->Tag = ObpTypeTags[Type];
    h->PointerCount = 1;
    if (Name && Name->Length) {
        h->Name.Buffer = ExAllocatePoolWithTag(PagedPool, Name->Length + 2u, 'maNO');
        if (!h->Name.Buffer) {
            ExFreePoolWithTag(h, h->Tag);
            return NULL;
        }
        memcpy(h->Name.Buffer, Name->Buffer, Name->Length);
        h->Name.Buffer[Name->Length / 2] = 0;
        h->Name.Length = Name->Length;
        h->Name.MaximumLength = (USHORT)(Name->Length + 2);
        h->NextNamed = ObpNamedObjects;
        ObpNamedObjects = h;
    }
    return h;
}

VOID ObpDereference(PKSIM_OBJECT_HEADER h)
{
    PKSIM_OBJECT_HEADER *link;
    if (--h->PointerCount > 0)
        return;
    /* A file object on a device: the device sees cleanup and close first (iocomp.c). */
    if (h->Type == ObTypeDeviceFile)
        IopCloseDeviceFile(OBP_BODY(h));
    for (link = &ObpNamedObjects; *link; link = &(*link)->NextNamed)
        if (*link == h) {
            *link = h->NextNamed;
            break;
        }
    if (h->Type == ObTypeFile)
        IopDeleteFile(OBP_BODY(h));
    if (h->Name.Buffer)
        ExFreePoolWithTag(h->Name.Buffer, 'maNO');
    ExFreePoolWithTag(h, h->Tag);
}

/* The table a new handle goes into, and whether its values carry the kernel bit. */
static OBP_HANDLE *ObpTableFor(ULONG Attributes, PBOOLEAN Kernel)
{
    *Kernel = (Attributes & OBJ_KERNEL_HANDLE) || !PspInUserProcess();
    return *Kernel ? ObpKernelTable : ObpUserTable;
}

/* Takes over one reference of h for the handle; on failure the reference is dropped. */
static NTSTATUS ObpInsertHandle(PKSIM_OBJECT_HEADER h, ACCESS_MASK Access, ULONG Attributes, PHANDLE Handle)
{
    PVOID contexts[OBP_MAX_CALLBACK_OPERATIONS];
    BOOLEAN kernel;
    OBP_HANDLE *table = ObpTableFor(Attributes, &kernel);
    BOOLEAN callbacks = h->Type == ObTypeProcess || h->Type == ObTypeThread;
    NTSTATUS status = STATUS_INSUFFICIENT_RESOURCES;
    ULONG i;

    Access = ObpMapGeneric(h->Type, Access);
    if (callbacks)
        Access = ObpPreCreateHandle(h, kernel, Access, contexts);
    *Handle = NULL;
    for (i = 0; i < HANDLE_TABLE_SIZE; i++)
        if (!table[i].Object) {
            table[i].Object = h;
            table[i].GrantedAccess = Access;
            table[i].Attributes = Attributes;
            h->HandleCount++;
            *Handle = (HANDLE)((kernel ? OBP_KERNEL_HANDLE_BIT : 0) | ((ULONG64)(i + 1) << 2));
            status = STATUS_SUCCESS;
            break;
        }
    if (callbacks)
        ObpPostCreateHandle(h, kernel, NT_SUCCESS(status) ? Access : 0, status, contexts);
    if (!NT_SUCCESS(status))
        ObpDereference(h);
    return status;
}

NTSTATUS ObpInsertObjectHandle(PVOID Object, ACCESS_MASK Access, ULONG Attributes, PHANDLE Handle)
{
    PKSIM_OBJECT_HEADER h = OBP_HEADER(Object);
    h->PointerCount++;
    return ObpInsertHandle(h, Access, Attributes, Handle);
}

/* The entry a handle value names for a caller in Mode, or NULL.  A kernel-mode
 * caller's kernel handle is the kernel table's; every other value is the current
 * process's (for the System process, that is the kernel table too). */
static OBP_HANDLE *ObpEntry(HANDLE Handle, KPROCESSOR_MODE Mode)
{
    ULONG64 v = (ULONG64)Handle;
    ULONG64 i = (v & ~OBP_KERNEL_HANDLE_BIT) >> 2;
    OBP_HANDLE *table;
    if ((v & OBP_KERNEL_HANDLE_BIT) == OBP_KERNEL_HANDLE_BIT)
        table = Mode == KernelMode ? ObpKernelTable : NULL;
    else if (v & OBP_KERNEL_HANDLE_BIT)
        table = NULL;
    else
        table = PspInUserProcess() ? ObpUserTable : ObpKernelTable;
    if (!table || (v & 3) || i == 0 || i > HANDLE_TABLE_SIZE || !table[i - 1].Object)
        return NULL;
    return &table[i - 1];
}

PKSIM_OBJECT_HEADER ObpLookupHandle(HANDLE Handle, KPROCESSOR_MODE Mode, ACCESS_MASK *Granted)
{
    OBP_HANDLE *entry = ObpEntry(Handle, Mode);
    if (!entry)
        return NULL;
    if (Granted)
        *Granted = entry->GrantedAccess;
    return entry->Object;
}

static VOID ObpCloseEntry(OBP_HANDLE *Entry)
{
    PKSIM_OBJECT_HEADER h = Entry->Object;
    memset(Entry, 0, sizeof(*Entry));
    h->HandleCount--;
    ObpDereference(h);
}

/* The user process ended: its handles close, as at process exit. */
VOID ObpCloseUserHandles(VOID)
{
    ULONG i;
    for (i = 0; i < HANDLE_TABLE_SIZE; i++)
        if (ObpUserTable[i].Object)
            ObpCloseEntry(&ObpUserTable[i]);
}

/* Opens the named object of Type, or creates it (every name exists here). */
NTSTATUS ObpOpen(ULONG Type, POBJECT_ATTRIBUTES Attributes, ACCESS_MASK Access, PHANDLE Handle,
                 PBOOLEAN Created)
{
    PUNICODE_STRING name = Attributes ? Attributes->ObjectName : NULL;
    PKSIM_OBJECT_HEADER h = ObpLookup(name, Type);

    *Handle = NULL;
    if (Created)
        *Created = h == NULL;
    if (h) {
        h->PointerCount++;
    } else {
        h = ObpCreate(Type, name);
        if (!h)
            return STATUS_INSUFFICIENT_RESOURCES;
    }
    return ObpInsertHandle(h, Access, Attributes ? Attributes->Attributes : 0, Handle);
}

/* A zeroed thread object (thread.c), with a kernel handle to it when Handle is not
 * NULL; its creation reference belongs to the thread until it has terminated. */
PVOID ObpCreateThreadObject(PHANDLE Handle)
{
    PKSIM_OBJECT_HEADER h = ObpCreate(ObTypeThread, NULL);
    if (!h)
        return NULL;
    if (Handle && !NT_SUCCESS(ObpInsertObjectHandle(OBP_BODY(h), GENERIC_ALL, OBJ_KERNEL_HANDLE, Handle))) {
        ObpDereference(h);
        return NULL;
    }
    return OBP_BODY(h);
}

/* A zeroed FILE_OBJECT (0xD8 bytes) for IoGetDeviceObjectPointer, with one reference. */
PVOID ObpCreateDeviceFileObject(VOID)
{
    PKSIM_OBJECT_HEADER h = ObpCreate(ObTypeDeviceFile, NULL);
    return h ? OBP_BODY(h) : NULL;
}

/* ZwClose is called from kernel mode: a kernel handle or one of the current process. */
NTSTATUS NTAPI ZwClose(HANDLE Handle)
{
    OBP_HANDLE *entry = ObpEntry(Handle, KernelMode);
    if (!entry)
        return STATUS_INVALID_HANDLE;
    ObpCloseEntry(entry);
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI ZwOpenKey(PHANDLE KeyHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes)
{
    return ObpOpen(ObTypeKey, ObjectAttributes, DesiredAccess, KeyHandle, NULL);
}

NTSTATUS NTAPI ZwOpenSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes)
{
    return ObpOpen(ObTypeSection, ObjectAttributes, DesiredAccess, SectionHandle, NULL);
}

NTSTATUS NTAPI ZwCreateDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
                                       POBJECT_ATTRIBUTES ObjectAttributes)
{
    return ObpOpen(ObTypeDirectory, ObjectAttributes, DesiredAccess, DirectoryHandle, NULL);
}

VOID NTAPI KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);

static PKEVENT IopCreateEvent(PUNICODE_STRING EventName, PHANDLE EventHandle, EVENT_TYPE Type)
{
    OBJECT_ATTRIBUTES attributes;
    BOOLEAN created = FALSE;
    PKSIM_OBJECT_HEADER h;

    memset(&attributes, 0, sizeof(attributes));
    attributes.Length = sizeof(attributes);
    attributes.ObjectName = EventName;
    attributes.Attributes = OBJ_KERNEL_HANDLE;
    if (!NT_SUCCESS(ObpOpen(ObTypeEvent, &attributes, GENERIC_ALL, EventHandle, &created)))
        return NULL;
    h = ObpLookupHandle(*EventHandle, KernelMode, NULL);
    if (created)
        /* A new event starts signalled, as IoCreate*Event documents. */
        KeInitializeEvent((PKEVENT)(h + 1), Type, TRUE);
    return (PKEVENT)(h + 1);
}

PKEVENT NTAPI IoCreateNotificationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle)
{
    return IopCreateEvent(EventName, EventHandle, NotificationEvent);
}

PKEVENT NTAPI IoCreateSynchronizationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle)
{
    return IopCreateEvent(EventName, EventHandle, SynchronizationEvent);
}

typedef struct _OBJECT_HANDLE_INFORMATION { ULONG HandleAttributes; ACCESS_MASK GrantedAccess; }
    OBJECT_HANDLE_INFORMATION, *POBJECT_HANDLE_INFORMATION;

NTSTATUS NTAPI ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess, PVOID ObjectType,
    KPROCESSOR_MODE AccessMode, PVOID *Object, PVOID HandleInformation)
{
    OBP_HANDLE *entry = ObpEntry(Handle, AccessMode);
    PKSIM_OBJECT_HEADER h;
    if (!entry)
        return STATUS_INVALID_HANDLE;
    h = entry->Object;
    if (ObjectType && ((KSIM_OBJECT_TYPE *)ObjectType)->Type != h->Type)
        return STATUS_OBJECT_TYPE_MISMATCH;
    if (AccessMode != KernelMode && (ObpMapGeneric(h->Type, DesiredAccess) & ~entry->GrantedAccess))
        return STATUS_ACCESS_DENIED;
    if (HandleInformation) {
        ((POBJECT_HANDLE_INFORMATION)HandleInformation)->HandleAttributes = entry->Attributes & 0xFF;
        ((POBJECT_HANDLE_INFORMATION)HandleInformation)->GrantedAccess = entry->GrantedAccess;
    }
    h->PointerCount++;
    *Object = OBP_BODY(h);
    return STATUS_SUCCESS;
}

/* System and its first thread have no header and live for ever (process.c). */
static BOOLEAN ObpUncounted(PVOID Object)
{
    return Object == PsInitialSystemProcess || Object == KiSystemThread;
}

/* Device objects carry no header here: iocomp.c counts their references. */
BOOLEAN IopReferenceDevice(PVOID Object, LONG Change, LONG_PTR *Count);

LONG_PTR NTAPI ObfReferenceObject(PVOID Object)
{
    PKSIM_OBJECT_HEADER h = (PKSIM_OBJECT_HEADER)Object - 1;
    LONG_PTR count;
    if (IopReferenceDevice(Object, 1, &count))
        return count;
    if (ObpUncounted(Object))
        return 1;
    return ++h->PointerCount;
}

LONG_PTR NTAPI ObfDereferenceObject(PVOID Object)
{
    PKSIM_OBJECT_HEADER h = (PKSIM_OBJECT_HEADER)Object - 1;
    LONG_PTR count;
    LONG left;
    if (IopReferenceDevice(Object, -1, &count))
        return count;
    if (ObpUncounted(Object))
        return 1;
    left = h->PointerCount - 1;
    ObpDereference(h);
    return left;
}

VOID NTAPI ObDereferenceObject(PVOID Object) { ObfDereferenceObject(Object); }
