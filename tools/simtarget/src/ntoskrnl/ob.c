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
 * thread handles go through the ObRegisterCallbacks callbacks (notify.c).  The
 * attributes a handle keeps (and ObReferenceObjectByHandle's HandleAttributes gives)
 * are Windows' handle attributes, OBJ_INHERIT and OBJ_AUDIT_OBJECT_CLOSE, kept in the
 * low bits of the entry's Object.
 */
#include "obp.h"

#define HANDLE_TABLE_SIZE 256       /* one page of entries (page-aligned): a level-0 table */
#define FILE_CREATED 2
#define FILE_OPENED 1
#define OBP_TYPE_TABLE_SIZE 16
#define FIELD(p, off, type) (*(type *)((PUCHAR)(p) + (off)))
/* HANDLE_TABLE_ENTRY.Object's low bits (Windows 7 x64): the entry's lock bit, set while
 * unlocked, then OBJ_INHERIT and OBJ_AUDIT_OBJECT_CLOSE. */
#define OBP_ENTRY_UNLOCKED 0x1ULL
#define OBP_ENTRY_ATTRIBUTES 0x6ULL
#define OBP_ENTRY_BITS 0x7ULL
#define OBP_UPCASE(c) ((c) >= 'a' && (c) <= 'z' ? (c) - ('a' - 'A') : (c))
#define OBP_OBJECT_OF(e) ((POBJECT_HEADER)((ULONG64)(e)->Object & ~OBP_ENTRY_BITS))

static OBJECT_TYPE ObpTypeObjects[ObTypeMax];
POBJECT_TYPE ObTypeIndexTable[OBP_TYPE_TABLE_SIZE];
OBJECT_TYPE *ExEventObjectType = &ObpTypeObjects[ObTypeEvent];
OBJECT_TYPE *PsThreadType = &ObpTypeObjects[ObTypeThread];
OBJECT_TYPE *PsProcessType = &ObpTypeObjects[ObTypeProcess];

STATIC_ASSERT(FIELD_OFFSET(OBJECT_HEADER, TypeIndex) == 0x18);
STATIC_ASSERT(FIELD_OFFSET(OBJECT_HEADER, SecurityDescriptor) == 0x28);
STATIC_ASSERT(FIELD_OFFSET(OBJECT_HEADER, Body) == 0x30 && sizeof(OBJECT_HEADER) == 0x38);
STATIC_ASSERT(sizeof(OBJECT_HEADER_NAME_INFO) == 0x20);
STATIC_ASSERT(sizeof(OBJECT_TYPE_INITIALIZER) == 0x70);
STATIC_ASSERT(FIELD_OFFSET(OBJECT_TYPE, Index) == 0x28 && FIELD_OFFSET(OBJECT_TYPE, TotalNumberOfHandles) == 0x30);
STATIC_ASSERT(FIELD_OFFSET(OBJECT_TYPE, Key) == 0xB8 && sizeof(OBJECT_TYPE) == 0xD0);
STATIC_ASSERT(sizeof(OBJECT_DIRECTORY_ENTRY) == 0x18 && sizeof(OBJECT_DIRECTORY) == 0x150);
STATIC_ASSERT(sizeof(HANDLE_TABLE_ENTRY) == 0x10);
STATIC_ASSERT(FIELD_OFFSET(HANDLE_TABLE, HandleCount) == 0x58 && sizeof(HANDLE_TABLE) == 0x68);

static HANDLE_TABLE ObpKernelTable, ObpUserTable;
static __declspec(align(4096)) HANDLE_TABLE_ENTRY ObpKernelEntries[HANDLE_TABLE_SIZE];
static __declspec(align(4096)) HANDLE_TABLE_ENTRY ObpUserEntries[HANDLE_TABLE_SIZE];
PHANDLE_TABLE ObpKernelHandleTable = &ObpKernelTable;
LIST_ENTRY HandleTableListHead;

/* The root directory "\" lives in the image: its name information, header and body. */
static __declspec(align(16)) struct {
    OBJECT_HEADER_NAME_INFO NameInfo;
    OBJECT_HEADER Header;
    UCHAR Rest[sizeof(OBJECT_DIRECTORY) - sizeof(QUAD)];
} ObpRoot;
POBJECT_DIRECTORY ObpRootDirectoryObject;
static WCHAR ObpRootName[] = { '\\', 0 };

/* \Driver and \Device, permanent directories in the root, live in the image too. */
typedef struct _OBP_STATIC_DIRECTORY {
    OBJECT_HEADER_NAME_INFO NameInfo;
    OBJECT_HEADER Header;
    UCHAR Rest[sizeof(OBJECT_DIRECTORY) - sizeof(QUAD)];
    OBJECT_DIRECTORY_ENTRY Entry;                   /* its entry in the root */
} OBP_STATIC_DIRECTORY;
static __declspec(align(16)) OBP_STATIC_DIRECTORY ObpDriverDirectory, ObpDeviceDirectory;
static WCHAR ObpDriverName[] = { 'D', 'r', 'i', 'v', 'e', 'r', 0 };
static WCHAR ObpDeviceName[] = { 'D', 'e', 'v', 'i', 'c', 'e', 0 };

static const ULONG ObpTypeTags[ObTypeMax] = { 0, 'nevE', 'eliF', ' yeK', 'tceS', 'eriD', 'erhT', 'corP',
                                              'virD', 'iveD', 'eliF' };
static const WCHAR *const ObpTypeNames[ObTypeMax] = { 0, L"Event", L"File", L"Key", L"Section", L"Directory",
                                                      L"Thread", L"Process", L"Driver", L"Device", 0 };
/* Driver and device bodies are sized by the I/O manager (ObpCreateNamedBody). */
static const ULONG ObpBodySizes[ObTypeMax] = { 0, sizeof(KEVENT), 0x40, 0x20, 0x20, sizeof(OBJECT_DIRECTORY),
                                               ETHREAD_SIZE, EPROCESS_SIZE, 0, 0, 0xD8 };
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
    { 0x00120089, 0x00120116, 0x001200A0, 0x001F01FF },     /* driver */
    { 0x00120089, 0x00120116, 0x001200A0, 0x001F01FF },     /* device */
    { 0x00120089, 0x00120116, 0x001200A0, 0x001F01FF },     /* a device's file object */
};

VOID IopCloseDeviceFile(PVOID FileObject);
static ULONG ObpHashName(PCUNICODE_STRING Name);

static VOID ObpInitializeDirectory(OBP_STATIC_DIRECTORY *Directory, PWSTR Name)
{
    POBJECT_DIRECTORY_ENTRY *bucket;
    memset(Directory, 0, sizeof(*Directory));
    Directory->NameInfo.Directory = ObpRootDirectoryObject;
    RtlInitUnicodeString(&Directory->NameInfo.Name, Name);
    Directory->Header.PointerCount = 1;
    Directory->Header.TypeIndex = OBP_TYPE_INDEX(ObTypeDirectory);
    Directory->Header.InfoMask = OBP_NAME_INFO_BIT;
    Directory->Header.Flags = 0x10;                 /* a permanent object */
    Directory->Entry.Object = OBP_BODY(&Directory->Header);
    Directory->Entry.HashValue = ObpHashName(&Directory->NameInfo.Name);
    bucket = &ObpRootDirectoryObject->HashBuckets[Directory->Entry.HashValue % OBP_HASH_BUCKETS];
    Directory->Entry.ChainLink = *bucket;
    *bucket = &Directory->Entry;
}

static VOID ObpInitializeTable(PHANDLE_TABLE Table, PHANDLE_TABLE_ENTRY Entries, PVOID Process)
{
    memset(Table, 0, sizeof(*Table));
    memset(Entries, 0, sizeof(HANDLE_TABLE_ENTRY) * HANDLE_TABLE_SIZE);
    Table->TableCode = (ULONG64)Entries;            /* level 0 in the low 2 bits */
    Table->QuotaProcess = Process;
    Table->UniqueProcessId = Process ? PsGetProcessId(Process) : NULL;
    Table->FirstFreeHandle = 4;
    Table->NextHandleNeedingPool = HANDLE_TABLE_SIZE * 4;
    InsertTailList(&HandleTableListHead, &Table->HandleTableList);
}

VOID KiInitializeObjects(VOID)
{
    ULONG t;
    memset(ObpTypeObjects, 0, sizeof(ObpTypeObjects));
    memset(ObTypeIndexTable, 0, sizeof(ObTypeIndexTable));
    for (t = ObTypeEvent; t < ObTypeDeviceFile; t++) {
        POBJECT_TYPE type = &ObpTypeObjects[t];
        InitializeListHead(&type->TypeList);
        InitializeListHead(&type->CallbackList);
        RtlInitUnicodeString(&type->Name, ObpTypeNames[t]);
        type->Index = OBP_TYPE_INDEX(t);
        type->Key = ObpTypeTags[t];
        type->TypeInfo.Length = sizeof(type->TypeInfo);
        type->TypeInfo.GenericMapping.GenericRead = ObpGenericMapping[t][0];
        type->TypeInfo.GenericMapping.GenericWrite = ObpGenericMapping[t][1];
        type->TypeInfo.GenericMapping.GenericExecute = ObpGenericMapping[t][2];
        type->TypeInfo.GenericMapping.GenericAll = ObpGenericMapping[t][3];
        type->TypeInfo.ValidAccessMask = ObpGenericMapping[t][3];
        ObTypeIndexTable[type->Index] = type;
    }
    InitializeListHead(&HandleTableListHead);
    ObpInitializeTable(&ObpKernelTable, ObpKernelEntries, PsInitialSystemProcess);
    ObpInitializeTable(&ObpUserTable, ObpUserEntries, NULL);
    RemoveEntryList(&ObpUserTable.HandleTableList);
    InitializeListHead(&ObpUserTable.HandleTableList);
    FIELD(PsInitialSystemProcess, EP_OBJECT_TABLE, PVOID) = &ObpKernelTable;

    memset(&ObpRoot, 0, sizeof(ObpRoot));
    ObpRoot.NameInfo.Directory = NULL;
    RtlInitUnicodeString(&ObpRoot.NameInfo.Name, ObpRootName);
    ObpRoot.Header.PointerCount = 1;
    ObpRoot.Header.TypeIndex = OBP_TYPE_INDEX(ObTypeDirectory);
    ObpRoot.Header.InfoMask = OBP_NAME_INFO_BIT;
    ObpRoot.Header.Flags = 0x10;                    /* a permanent object */
    ObpRootDirectoryObject = OBP_BODY(&ObpRoot.Header);
    ObpInitializeDirectory(&ObpDriverDirectory, ObpDriverName);
    ObpInitializeDirectory(&ObpDeviceDirectory, ObpDeviceName);
    ObpTypeObjects[ObTypeDirectory].TotalNumberOfObjects = 3;
    ObpTypeObjects[ObTypeDirectory].HighWaterNumberOfObjects = 3;
}

/* The user process (process.c) takes the user table; its entries stay as they are. */
VOID ObpInitializeUserTable(PVOID Process)
{
    ObpUserTable.QuotaProcess = Process;
    ObpUserTable.UniqueProcessId = PsGetProcessId(Process);
    RemoveEntryList(&ObpUserTable.HandleTableList);
    InsertTailList(&HandleTableListHead, &ObpUserTable.HandleTableList);
    FIELD(Process, EP_OBJECT_TABLE, PVOID) = &ObpUserTable;
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

/* The directory's hash of a name: each upcased character folded into the running value
 * (value += value * 2 + value / 2 + character); the bucket is the value modulo 37. */
static ULONG ObpHashName(PCUNICODE_STRING Name)
{
    ULONG hash = 0, i;
    for (i = 0; i < Name->Length / 2u; i++) {
        WCHAR c = Name->Buffer[i];
        hash += (hash << 1) + (hash >> 1);
        hash += c >= 'a' && c <= 'z' ? c - ('a' - 'A') : c;
    }
    return hash;
}

static POBJECT_HEADER ObpLookup(PUNICODE_STRING Name, ULONG Type)
{
    POBJECT_DIRECTORY_ENTRY entry;
    if (!Name || !Name->Length)
        return NULL;
    entry = ObpRootDirectoryObject->HashBuckets[ObpHashName(Name) % OBP_HASH_BUCKETS];
    for (; entry; entry = entry->ChainLink) {
        POBJECT_HEADER h = OBP_HEADER(entry->Object);
        if (OBP_TYPE(h) == Type && RtlCompareUnicodeString(&OBP_NAME_INFO(h)->Name, Name, TRUE) == 0)
            return h;
    }
    return NULL;
}

static VOID ObpUnlinkName(POBJECT_HEADER h)
{
    POBJECT_HEADER_NAME_INFO info = OBP_NAME_INFO(h);
    POBJECT_DIRECTORY_ENTRY *link, entry;
    if (!info || !info->Directory)
        return;
    link = &info->Directory->HashBuckets[ObpHashName(&info->Name) % OBP_HASH_BUCKETS];
    for (; (entry = *link) != NULL; link = &entry->ChainLink)
        if (entry->Object == OBP_BODY(h)) {
            *link = entry->ChainLink;
            ExFreePoolWithTag(entry, 'iDbO');
            break;
        }
    info->Directory = NULL;
}

/* An object of Type with a zeroed body of BodySize bytes, named Name in Directory when
 * Name is not empty, with one reference. */
static POBJECT_HEADER ObpCreateIn(ULONG Type, POBJECT_DIRECTORY Directory, PCUNICODE_STRING Name,
                                  SIZE_T BodySize)
{
    BOOLEAN named = Name && Name->Length;
    SIZE_T extra = named ? sizeof(OBJECT_HEADER_NAME_INFO) : 0;
    SIZE_T size = extra + FIELD_OFFSET(OBJECT_HEADER, Body) + BodySize;
    PUCHAR block = ExAllocatePoolWithTag(NonPagedPool, size, ObpTypeTags[Type]);
    POBJECT_TYPE type = ObTypeIndexTable[OBP_TYPE_INDEX(Type)];
    POBJECT_HEADER h;
    if (!block)
        return NULL;
    memset(block, 0, size);
    h = (POBJECT_HEADER)(block + extra);
    h->TypeIndex = OBP_TYPE_INDEX(Type);
    h->PointerCount = 1;
    if (named) {
        POBJECT_HEADER_NAME_INFO info = (POBJECT_HEADER_NAME_INFO)block;
        POBJECT_DIRECTORY_ENTRY entry = ExAllocatePoolWithTag(PagedPool, sizeof(*entry), 'iDbO');
        info->Name.Buffer = ExAllocatePoolWithTag(PagedPool, Name->Length + 2u, 'maNO');
        if (!entry || !info->Name.Buffer) {
            if (entry)
                ExFreePoolWithTag(entry, 'iDbO');
            if (info->Name.Buffer)
                ExFreePoolWithTag(info->Name.Buffer, 'maNO');
            ExFreePoolWithTag(block, type->Key);
            return NULL;
        }
        memcpy(info->Name.Buffer, Name->Buffer, Name->Length);
        info->Name.Buffer[Name->Length / 2] = 0;
        info->Name.Length = Name->Length;
        info->Name.MaximumLength = (USHORT)(Name->Length + 2);
        info->Directory = Directory;
        h->InfoMask |= OBP_NAME_INFO_BIT;
        entry->Object = OBP_BODY(h);
        entry->HashValue = ObpHashName(Name);
        entry->ChainLink = Directory->HashBuckets[entry->HashValue % OBP_HASH_BUCKETS];
        Directory->HashBuckets[entry->HashValue % OBP_HASH_BUCKETS] = entry;
    }
    if (++type->TotalNumberOfObjects > type->HighWaterNumberOfObjects)
        type->HighWaterNumberOfObjects = type->TotalNumberOfObjects;
    return h;
}

POBJECT_HEADER ObpCreate(ULONG Type, PUNICODE_STRING Name)
{
    return ObpCreateIn(Type, ObpRootDirectoryObject, Name, ObpBodySizes[Type]);
}

/* Whether Name is Prefix followed by one name part; Leaf is that part. */
static BOOLEAN ObpSplitName(PCUNICODE_STRING Name, PCWSTR Prefix, PUNICODE_STRING Leaf)
{
    USHORT p = 0, i;
    while (Prefix[p])
        p++;
    if (Name->Length / 2u <= p)
        return FALSE;
    for (i = 0; i < p; i++)
        if (OBP_UPCASE(Name->Buffer[i]) != OBP_UPCASE(Prefix[i]))
            return FALSE;
    for (i = p; i < Name->Length / 2u; i++)
        if (Name->Buffer[i] == '\\')
            return FALSE;
    Leaf->Buffer = Name->Buffer + p;
    Leaf->Length = (USHORT)(Name->Length - p * 2);
    Leaf->MaximumLength = Leaf->Length;
    return TRUE;
}

/* A driver or device object (io.c) with its object header, named after Name (NULL or
 * empty: unnamed): \Driver\X and \Device\X go in their directory as X, as Windows
 * keeps them, any other name in the root whole.  The body is zeroed; NULL when out of pool. */
PVOID ObpCreateNamedBody(ULONG Type, PCUNICODE_STRING Name, SIZE_T BodySize)
{
    POBJECT_DIRECTORY directory = ObpRootDirectoryObject;
    UNICODE_STRING leaf;
    POBJECT_HEADER h;
    if (Name && Name->Length && ObpSplitName(Name, Type == ObTypeDriver ? (PCWSTR)u"\\Driver\\"
                                                                        : (PCWSTR)u"\\Device\\", &leaf)) {
        directory = OBP_BODY(Type == ObTypeDriver ? &ObpDriverDirectory.Header : &ObpDeviceDirectory.Header);
        Name = &leaf;
    }
    h = ObpCreateIn(Type, directory, Name, BodySize);
    if (!h)
        return NULL;
    h->Flags = 0x10;                                /* permanent until deleted */
    return OBP_BODY(h);
}

/* A device's file object (iocomp.c) is told from a host file (file.c) by its body: an
 * IO_TYPE_FILE FILE_OBJECT of 0xD8 bytes. */
static BOOLEAN ObpIsDeviceFile(POBJECT_HEADER h)
{
    CSHORT *body = OBP_BODY(h);
    return body[0] == 5 && body[1] == (CSHORT)ObpBodySizes[ObTypeDeviceFile];
}

static VOID ObpFree(POBJECT_HEADER h)
{
    POBJECT_HEADER_NAME_INFO info = OBP_NAME_INFO(h);
    POBJECT_TYPE type = ObTypeIndexTable[h->TypeIndex];
    ObpUnlinkName(h);
    type->TotalNumberOfObjects--;
    if (info && info->Name.Buffer)
        ExFreePoolWithTag(info->Name.Buffer, 'maNO');
    ExFreePoolWithTag(info ? (PVOID)info : (PVOID)h, type->Key);
}

VOID ObpDereference(POBJECT_HEADER h)
{
    BOOLEAN device = OBP_TYPE(h) == ObTypeFile && ObpIsDeviceFile(h);
    if (--h->PointerCount > 0)
        return;
    /* A file object on a device: the device sees cleanup and close first (iocomp.c). */
    if (device)
        IopCloseDeviceFile(OBP_BODY(h));
    ObpUnlinkName(h);
    if (OBP_TYPE(h) == ObTypeFile && !device)
        IopDeleteFile(OBP_BODY(h));
    ObpFree(h);
}

/* A driver or device object goes (driver unload, IoDeleteDevice): out of its directory
 * and back to pool, whatever references are left. */
VOID ObpDeleteBody(PVOID Body)
{
    ObpFree(OBP_HEADER(Body));
}

/* The table a new handle goes into, and whether its values carry the kernel bit. */
static PHANDLE_TABLE ObpTableFor(ULONG Attributes, PBOOLEAN Kernel)
{
    *Kernel = (Attributes & OBJ_KERNEL_HANDLE) || !PspInUserProcess();
    return *Kernel ? &ObpKernelTable : &ObpUserTable;
}

static PHANDLE_TABLE_ENTRY ObpEntries(PHANDLE_TABLE Table)
{
    return (PHANDLE_TABLE_ENTRY)(Table->TableCode & ~3ULL);
}

/* Takes over one reference of h for the handle; on failure the reference is dropped. */
static NTSTATUS ObpInsertHandle(POBJECT_HEADER h, ACCESS_MASK Access, ULONG Attributes, PHANDLE Handle)
{
    PVOID contexts[OBP_MAX_CALLBACK_OPERATIONS];
    BOOLEAN kernel;
    PHANDLE_TABLE table = ObpTableFor(Attributes, &kernel);
    PHANDLE_TABLE_ENTRY entries = ObpEntries(table);
    POBJECT_TYPE type = ObTypeIndexTable[h->TypeIndex];
    BOOLEAN callbacks = OBP_TYPE(h) == ObTypeProcess || OBP_TYPE(h) == ObTypeThread;
    NTSTATUS status = STATUS_INSUFFICIENT_RESOURCES;
    ULONG i;

    Access = ObpMapGeneric(OBP_TYPE(h), Access);
    if (callbacks)
        Access = ObpPreCreateHandle(h, kernel, Access, contexts);
    *Handle = NULL;
    for (i = 1; i < HANDLE_TABLE_SIZE; i++)
        if (!entries[i].Object) {
            entries[i].Object = (PVOID)((ULONG64)h | OBP_ENTRY_UNLOCKED | (Attributes & OBP_ENTRY_ATTRIBUTES));
            entries[i].GrantedAccess = Access;
            h->HandleCount++;
            if (++table->HandleCount > (LONG)table->HandleCountHighWatermark)
                table->HandleCountHighWatermark = table->HandleCount;
            if (++type->TotalNumberOfHandles > type->HighWaterNumberOfHandles)
                type->HighWaterNumberOfHandles = type->TotalNumberOfHandles;
            *Handle = (HANDLE)((kernel ? OBP_KERNEL_HANDLE_BIT : 0) | ((ULONG64)i << 2));
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
    POBJECT_HEADER h = OBP_HEADER(Object);
    h->PointerCount++;
    return ObpInsertHandle(h, Access, Attributes, Handle);
}

/* The entry a handle value names for a caller in Mode, or NULL (and its table).  A
 * kernel-mode caller's kernel handle is the kernel table's; every other value is the
 * current process's (for the System process, that is the kernel table too). */
static PHANDLE_TABLE_ENTRY ObpEntry(HANDLE Handle, KPROCESSOR_MODE Mode, PHANDLE_TABLE *Table)
{
    ULONG64 v = (ULONG64)Handle;
    ULONG64 i = (v & ~OBP_KERNEL_HANDLE_BIT) >> 2;
    PHANDLE_TABLE table;
    PHANDLE_TABLE_ENTRY entries;
    if ((v & OBP_KERNEL_HANDLE_BIT) == OBP_KERNEL_HANDLE_BIT)
        table = Mode == KernelMode ? &ObpKernelTable : NULL;
    else if (v & OBP_KERNEL_HANDLE_BIT)
        table = NULL;
    else
        table = PspInUserProcess() ? &ObpUserTable : &ObpKernelTable;
    if (!table || (v & 3) || i == 0 || i >= HANDLE_TABLE_SIZE)
        return NULL;
    entries = ObpEntries(table);
    if (!entries[i].Object)
        return NULL;
    if (Table)
        *Table = table;
    return &entries[i];
}

POBJECT_HEADER ObpLookupHandle(HANDLE Handle, KPROCESSOR_MODE Mode, ACCESS_MASK *Granted)
{
    PHANDLE_TABLE_ENTRY entry = ObpEntry(Handle, Mode, NULL);
    if (!entry)
        return NULL;
    if (Granted)
        *Granted = entry->GrantedAccess;
    return OBP_OBJECT_OF(entry);
}

static VOID ObpCloseEntry(PHANDLE_TABLE Table, PHANDLE_TABLE_ENTRY Entry)
{
    POBJECT_HEADER h = OBP_OBJECT_OF(Entry);
    memset(Entry, 0, sizeof(*Entry));
    Table->HandleCount--;
    ObTypeIndexTable[h->TypeIndex]->TotalNumberOfHandles--;
    h->HandleCount--;
    ObpDereference(h);
}

/* The user process ended: its handles close, as at process exit. */
VOID ObpCloseUserHandles(VOID)
{
    PHANDLE_TABLE_ENTRY entries = ObpEntries(&ObpUserTable);
    ULONG i;
    for (i = 1; i < HANDLE_TABLE_SIZE; i++)
        if (entries[i].Object)
            ObpCloseEntry(&ObpUserTable, &entries[i]);
    RemoveEntryList(&ObpUserTable.HandleTableList);
    InitializeListHead(&ObpUserTable.HandleTableList);
    ObpUserTable.QuotaProcess = NULL;
}

/* Opens the named object of Type, or creates it (every name exists here). */
NTSTATUS ObpOpen(ULONG Type, POBJECT_ATTRIBUTES Attributes, ACCESS_MASK Access, PHANDLE Handle,
                 PBOOLEAN Created)
{
    PUNICODE_STRING name = Attributes ? Attributes->ObjectName : NULL;
    POBJECT_HEADER h = ObpLookup(name, Type);

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
    POBJECT_HEADER h = ObpCreate(ObTypeThread, NULL);
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
    POBJECT_HEADER h = ObpCreate(ObTypeDeviceFile, NULL);
    return h ? OBP_BODY(h) : NULL;
}

/* ZwClose is called from kernel mode: a kernel handle or one of the current process. */
NTSTATUS NTAPI ZwClose(HANDLE Handle)
{
    PHANDLE_TABLE table;
    PHANDLE_TABLE_ENTRY entry = ObpEntry(Handle, KernelMode, &table);
    if (!entry)
        return STATUS_INVALID_HANDLE;
    ObpCloseEntry(table, entry);
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
    POBJECT_HEADER h;

    memset(&attributes, 0, sizeof(attributes));
    attributes.Length = sizeof(attributes);
    attributes.ObjectName = EventName;
    attributes.Attributes = OBJ_KERNEL_HANDLE;
    if (!NT_SUCCESS(ObpOpen(ObTypeEvent, &attributes, GENERIC_ALL, EventHandle, &created)))
        return NULL;
    h = ObpLookupHandle(*EventHandle, KernelMode, NULL);
    if (created)
        /* A new event starts signalled, as IoCreate*Event documents. */
        KeInitializeEvent(OBP_BODY(h), Type, TRUE);
    return OBP_BODY(h);
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
    PHANDLE_TABLE_ENTRY entry = ObpEntry(Handle, AccessMode, NULL);
    POBJECT_HEADER h;
    if (!entry)
        return STATUS_INVALID_HANDLE;
    h = OBP_OBJECT_OF(entry);
    if (ObjectType && ObjectType != ObTypeIndexTable[h->TypeIndex])
        return STATUS_OBJECT_TYPE_MISMATCH;
    if (AccessMode != KernelMode && (ObpMapGeneric(OBP_TYPE(h), DesiredAccess) & ~entry->GrantedAccess))
        return STATUS_ACCESS_DENIED;
    if (HandleInformation) {
        ((POBJECT_HANDLE_INFORMATION)HandleInformation)->HandleAttributes =
            (ULONG)((ULONG64)entry->Object & OBP_ENTRY_ATTRIBUTES);
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
    POBJECT_HEADER h = OBP_HEADER(Object);
    LONG_PTR count;
    if (IopReferenceDevice(Object, 1, &count))
        return count;
    if (ObpUncounted(Object))
        return 1;
    return ++h->PointerCount;
}

LONG_PTR NTAPI ObfDereferenceObject(PVOID Object)
{
    POBJECT_HEADER h = OBP_HEADER(Object);
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
