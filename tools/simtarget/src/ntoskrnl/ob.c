/*
 * ob.c - a minimal object manager: named objects with reference counts and one
 * kernel handle table, enough for the handle-returning routines drivers call
 * (ZwCreateFile, ZwOpenKey, ZwOpenSection, ZwCreateDirectoryObject,
 * IoCreateNotificationEvent, IoCreateSynchronizationEvent) and ZwClose.
 *
 * Objects have no backing store: a file is created empty, a key or section opens
 * whatever the name says.  Handles are kernel handles (bit 31 set, multiples of 4).
 */
#include "ki.h"

#define OBJ_KERNEL_HANDLE_BIT 0xFFFFFFFF80000000ULL
#define HANDLE_TABLE_SIZE 256
#define FILE_CREATED 2
#define FILE_OPENED 1
#define STATUS_OBJECT_TYPE_MISMATCH ((NTSTATUS)0xC0000024L)

typedef enum { ObTypeEvent = 1, ObTypeFile, ObTypeKey, ObTypeSection, ObTypeDirectory, ObTypeThread,
               ObTypeProcess, ObTypeDeviceFile } OB_TYPE;

/* The object types drivers name through the exported POBJECT_TYPE variables; only
 * their identity matters (ObReferenceObjectByHandle compares it). */
typedef struct _KSIM_OBJECT_TYPE { ULONG Type; } KSIM_OBJECT_TYPE;
static KSIM_OBJECT_TYPE ObpEventType = { ObTypeEvent };
static KSIM_OBJECT_TYPE ObpThreadType = { ObTypeThread };
static KSIM_OBJECT_TYPE ObpProcessType = { ObTypeProcess };
KSIM_OBJECT_TYPE *ExEventObjectType = &ObpEventType;
KSIM_OBJECT_TYPE *PsThreadType = &ObpThreadType;
KSIM_OBJECT_TYPE *PsProcessType = &ObpProcessType;

/* Header in front of every object body, from the pool with the type's tag. */
typedef struct _KSIM_OBJECT_HEADER {
    LONG PointerCount;
    LONG HandleCount;
    ULONG Type;
    ULONG Tag;
    UNICODE_STRING Name;
    struct _KSIM_OBJECT_HEADER *NextNamed;
    ULONG64 Pad;
} KSIM_OBJECT_HEADER, *PKSIM_OBJECT_HEADER;
STATIC_ASSERT(sizeof(KSIM_OBJECT_HEADER) % 16 == 0);

static PKSIM_OBJECT_HEADER ObpHandleTable[HANDLE_TABLE_SIZE];
static PKSIM_OBJECT_HEADER ObpNamedObjects;

static const ULONG ObpTypeTags[] = { 0, 'nevE', 'eliF', ' yeK', 'tceS', 'eriD', 'erhT', 0, 'eliF' };
static const ULONG ObpBodySizes[] = { 0, sizeof(KEVENT), 0x40, 0x20, 0x20, 0x20, ETHREAD_SIZE, 0, 0xD8 };

VOID IopCloseDeviceFile(PVOID FileObject);

VOID KiInitializeObjects(VOID)
{
    memset(ObpHandleTable, 0, sizeof(ObpHandleTable));
    ObpNamedObjects = NULL;
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

static PKSIM_OBJECT_HEADER ObpCreate(ULONG Type, PUNICODE_STRING Name)
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

static VOID ObpDereference(PKSIM_OBJECT_HEADER h)
{
    PKSIM_OBJECT_HEADER *link;
    if (--h->PointerCount > 0)
        return;
    /* A file object on a device: the device sees cleanup and close first (iocomp.c). */
    if (h->Type == ObTypeDeviceFile)
        IopCloseDeviceFile(h + 1);
    for (link = &ObpNamedObjects; *link; link = &(*link)->NextNamed)
        if (*link == h) {
            *link = h->NextNamed;
            break;
        }
    if (h->Name.Buffer)
        ExFreePoolWithTag(h->Name.Buffer, 'maNO');
    ExFreePoolWithTag(h, h->Tag);
}

static NTSTATUS ObpInsertHandle(PKSIM_OBJECT_HEADER h, PHANDLE Handle)
{
    ULONG i;
    for (i = 0; i < HANDLE_TABLE_SIZE; i++)
        if (!ObpHandleTable[i]) {
            ObpHandleTable[i] = h;
            h->HandleCount++;
            *Handle = (HANDLE)(OBJ_KERNEL_HANDLE_BIT | ((ULONG64)(i + 1) << 2));
            return STATUS_SUCCESS;
        }
    return STATUS_INSUFFICIENT_RESOURCES;
}

static LONG ObpHandleIndex(HANDLE Handle)
{
    ULONG64 v = (ULONG64)Handle;
    ULONG64 i = ((v & ~OBJ_KERNEL_HANDLE_BIT) >> 2);
    if ((v & OBJ_KERNEL_HANDLE_BIT) != OBJ_KERNEL_HANDLE_BIT || (v & 3) || i == 0 || i > HANDLE_TABLE_SIZE)
        return -1;
    return ObpHandleTable[i - 1] ? (LONG)(i - 1) : -1;
}

/* Opens the named object of Type, or creates it when Create is set. */
static NTSTATUS ObpOpen(ULONG Type, POBJECT_ATTRIBUTES Attributes, BOOLEAN Create, PHANDLE Handle,
                        PBOOLEAN Created)
{
    PUNICODE_STRING name = Attributes ? Attributes->ObjectName : NULL;
    PKSIM_OBJECT_HEADER h = ObpLookup(name, Type);
    NTSTATUS status;

    *Handle = NULL;
    if (Created)
        *Created = h == NULL;
    if (h) {
        h->PointerCount++;
    } else {
        (void)Create;
        h = ObpCreate(Type, name);
        if (!h)
            return STATUS_INSUFFICIENT_RESOURCES;
    }
    status = ObpInsertHandle(h, Handle);
    if (!NT_SUCCESS(status))
        ObpDereference(h);
    return status;
}

/* A zeroed thread object (thread.c), with a handle to it when Handle is not NULL; its
 * creation reference belongs to the thread until it has terminated. */
PVOID ObpCreateThreadObject(PHANDLE Handle)
{
    PKSIM_OBJECT_HEADER h = ObpCreate(ObTypeThread, NULL);
    if (!h)
        return NULL;
    if (Handle) {
        h->PointerCount++;
        if (!NT_SUCCESS(ObpInsertHandle(h, Handle))) {
            ObpDereference(h);
            ObpDereference(h);
            return NULL;
        }
    }
    return h + 1;
}

/* A zeroed FILE_OBJECT (0xD8 bytes) for IoGetDeviceObjectPointer, with one reference. */
PVOID ObpCreateDeviceFileObject(VOID)
{
    PKSIM_OBJECT_HEADER h = ObpCreate(ObTypeDeviceFile, NULL);
    return h ? h + 1 : NULL;
}

NTSTATUS NTAPI ZwClose(HANDLE Handle)
{
    LONG i = ObpHandleIndex(Handle);
    PKSIM_OBJECT_HEADER h;
    if (i < 0)
        return STATUS_INVALID_HANDLE;
    h = ObpHandleTable[i];
    ObpHandleTable[i] = NULL;
    h->HandleCount--;
    ObpDereference(h);
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
    PIO_STATUS_BLOCK IoStatusBlock, PLARGE_INTEGER AllocationSize, ULONG FileAttributes, ULONG ShareAccess,
    ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer, ULONG EaLength)
{
    BOOLEAN created = FALSE;
    NTSTATUS status;
    (void)DesiredAccess; (void)AllocationSize; (void)FileAttributes; (void)ShareAccess;
    (void)CreateDisposition; (void)CreateOptions; (void)EaBuffer; (void)EaLength;
    status = ObpOpen(ObTypeFile, ObjectAttributes, TRUE, FileHandle, &created);
    if (IoStatusBlock) {
        IoStatusBlock->Status = status;
        IoStatusBlock->Information = created ? FILE_CREATED : FILE_OPENED;
    }
    return status;
}

NTSTATUS NTAPI ZwOpenKey(PHANDLE KeyHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes)
{
    (void)DesiredAccess;
    return ObpOpen(ObTypeKey, ObjectAttributes, FALSE, KeyHandle, NULL);
}

NTSTATUS NTAPI ZwOpenSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes)
{
    (void)DesiredAccess;
    return ObpOpen(ObTypeSection, ObjectAttributes, FALSE, SectionHandle, NULL);
}

NTSTATUS NTAPI ZwCreateDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
                                       POBJECT_ATTRIBUTES ObjectAttributes)
{
    (void)DesiredAccess;
    return ObpOpen(ObTypeDirectory, ObjectAttributes, TRUE, DirectoryHandle, NULL);
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
    if (!NT_SUCCESS(ObpOpen(ObTypeEvent, &attributes, TRUE, EventHandle, &created)))
        return NULL;
    h = ObpHandleTable[ObpHandleIndex(*EventHandle)];
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

NTSTATUS NTAPI ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess, PVOID ObjectType,
    KPROCESSOR_MODE AccessMode, PVOID *Object, PVOID HandleInformation)
{
    LONG i = ObpHandleIndex(Handle);
    (void)DesiredAccess; (void)AccessMode; (void)HandleInformation;
    if (i < 0)
        return STATUS_INVALID_HANDLE;
    if (ObjectType && ((KSIM_OBJECT_TYPE *)ObjectType)->Type != ObpHandleTable[i]->Type)
        return STATUS_OBJECT_TYPE_MISMATCH;
    ObpHandleTable[i]->PointerCount++;
    *Object = ObpHandleTable[i] + 1;
    return STATUS_SUCCESS;
}

/* Device objects carry no header here: iocomp.c counts their references. */
BOOLEAN IopReferenceDevice(PVOID Object, LONG Change, LONG_PTR *Count);

LONG_PTR NTAPI ObfReferenceObject(PVOID Object)
{
    PKSIM_OBJECT_HEADER h = (PKSIM_OBJECT_HEADER)Object - 1;
    LONG_PTR count;
    if (IopReferenceDevice(Object, 1, &count))
        return count;
    return ++h->PointerCount;
}

LONG_PTR NTAPI ObfDereferenceObject(PVOID Object)
{
    PKSIM_OBJECT_HEADER h = (PKSIM_OBJECT_HEADER)Object - 1;
    LONG_PTR count;
    LONG left;
    if (IopReferenceDevice(Object, -1, &count))
        return count;
    left = h->PointerCount - 1;
    ObpDereference(h);
    return left;
}

VOID NTAPI ObDereferenceObject(PVOID Object) { ObfDereferenceObject(Object); }
