/*
 * obp.h - the object manager's internal interface shared by ob.c (objects, handle
 * tables), file.c (host-backed files), process.c (the simulated user process) and
 * notify.c (notify routines and object callbacks).
 *
 * Objects and handle tables are kept as Windows 7 SP1 x64 keeps them, with its type and
 * member names (public symbols, as the Vergilius Project lists them), so a debugger
 * reads them with nt's types: an OBJECT_HEADER right before each body (the body at
 * +0x30), an OBJECT_HEADER_NAME_INFO before the header of a named object (InfoMask bit
 * 0x2; the only optional header here, so it sits 0x20 bytes before the header), the
 * types' OBJECT_TYPEs in ObTypeIndexTable (indices from 2, 0 and 1 being no type), the
 * named objects in the root OBJECT_DIRECTORY's 37 hash buckets under their full paths,
 * except driver and device objects, which are in the root's two subdirectories \Driver
 * and \Device under their last name part, as Windows keeps them (a device named
 * outside \Device stays in the root under its full path), and one-level HANDLE_TABLEs of 256
 * HANDLE_TABLE_ENTRYs (entry 0 unused, handle = index * 4).  There are two handle
 * tables: the kernel's (the System process's, ObpKernelHandleTable; handles with bit 31
 * set) and the simulated user process's; EPROCESS.ObjectTable points at them.
 */
#ifndef KSIM_OBP_H
#define KSIM_OBP_H

#include "ksimrt.h"

/* The kernel's own kinds of object; a device's file object is a File to everyone else. */
typedef enum { ObTypeEvent = 1, ObTypeFile, ObTypeKey, ObTypeSection, ObTypeDirectory, ObTypeThread,
               ObTypeProcess, ObTypeDriver, ObTypeDevice, ObTypeDeviceFile, ObTypeMax } OB_TYPE;

typedef struct _GENERIC_MAPPING {
    ACCESS_MASK GenericRead, GenericWrite, GenericExecute, GenericAll;
} GENERIC_MAPPING;

typedef struct _OBJECT_TYPE_INITIALIZER {
    USHORT Length;
    UCHAR ObjectTypeFlags;
    ULONG ObjectTypeCode;
    ULONG InvalidAttributes;
    GENERIC_MAPPING GenericMapping;
    ULONG ValidAccessMask;
    ULONG RetainAccess;
    ULONG PoolType;
    ULONG DefaultPagedPoolCharge;
    ULONG DefaultNonPagedPoolCharge;
    PVOID DumpProcedure, OpenProcedure, CloseProcedure, DeleteProcedure, ParseProcedure,
          SecurityProcedure, QueryNameProcedure, OkayToCloseProcedure;
} OBJECT_TYPE_INITIALIZER;

/* What the exported POBJECT_TYPE variables point at; Key is the pool tag of its objects. */
typedef struct _OBJECT_TYPE {
    LIST_ENTRY TypeList;
    UNICODE_STRING Name;
    PVOID DefaultObject;
    UCHAR Index;
    ULONG TotalNumberOfObjects;
    ULONG TotalNumberOfHandles;
    ULONG HighWaterNumberOfObjects;
    ULONG HighWaterNumberOfHandles;
    OBJECT_TYPE_INITIALIZER TypeInfo;
    PVOID TypeLock;
    ULONG Key;
    LIST_ENTRY CallbackList;
} OBJECT_TYPE, *POBJECT_TYPE;

typedef struct _QUAD { LONG64 UseThisFieldToCopy; } QUAD;

typedef struct _OBJECT_HEADER {
    LONG64 PointerCount;
    LONG64 HandleCount;
    PVOID Lock;
    UCHAR TypeIndex;
    UCHAR TraceFlags;
    UCHAR InfoMask;
    UCHAR Flags;
    PVOID ObjectCreateInfo;
    PVOID SecurityDescriptor;
    QUAD Body;
} OBJECT_HEADER, *POBJECT_HEADER;

struct _OBJECT_DIRECTORY;

typedef struct _OBJECT_HEADER_NAME_INFO {
    struct _OBJECT_DIRECTORY *Directory;
    UNICODE_STRING Name;
    LONG ReferenceCount;
} OBJECT_HEADER_NAME_INFO, *POBJECT_HEADER_NAME_INFO;

typedef struct _OBJECT_DIRECTORY_ENTRY {
    struct _OBJECT_DIRECTORY_ENTRY *ChainLink;
    PVOID Object;
    ULONG HashValue;
} OBJECT_DIRECTORY_ENTRY, *POBJECT_DIRECTORY_ENTRY;

#define OBP_HASH_BUCKETS 37
typedef struct _OBJECT_DIRECTORY {
    POBJECT_DIRECTORY_ENTRY HashBuckets[OBP_HASH_BUCKETS];
    PVOID Lock;
    PVOID DeviceMap;
    ULONG SessionId;
    PVOID NamespaceEntry;
    ULONG Flags;
} OBJECT_DIRECTORY, *POBJECT_DIRECTORY;

typedef struct _HANDLE_TABLE_ENTRY {
    PVOID Object;                   /* the OBJECT_HEADER | OBP_ENTRY_* bits */
    ACCESS_MASK GrantedAccess;
} HANDLE_TABLE_ENTRY, *PHANDLE_TABLE_ENTRY;

typedef struct _HANDLE_TABLE {
    ULONG64 TableCode;              /* the entries' address | the table's level (0 here) */
    PVOID QuotaProcess;
    PVOID UniqueProcessId;
    PVOID HandleLock;
    LIST_ENTRY HandleTableList;
    PVOID HandleContentionEvent;
    PVOID DebugInfo;
    LONG ExtraInfoPages;
    ULONG Flags;
    ULONG FirstFreeHandle;
    PHANDLE_TABLE_ENTRY LastFreeHandleEntry;
    LONG HandleCount;
    ULONG NextHandleNeedingPool;
    ULONG HandleCountHighWatermark;
} HANDLE_TABLE, *PHANDLE_TABLE;

#define OBP_NAME_INFO_BIT 0x02
#define OBP_BODY(h) ((PVOID)&((POBJECT_HEADER)(h))->Body)
#define OBP_HEADER(o) ((POBJECT_HEADER)((PUCHAR)(o) - FIELD_OFFSET(OBJECT_HEADER, Body)))
#define OBP_NAME_INFO(h) (((h)->InfoMask & OBP_NAME_INFO_BIT) ? (POBJECT_HEADER_NAME_INFO)(h) - 1 : NULL)
/* ObTypeIndexTable's index of a kind, and back (a device's file object is a File). */
#define OBP_TYPE_INDEX(t) ((UCHAR)(((t) == ObTypeDeviceFile ? ObTypeFile : (t)) + 1))
#define OBP_TYPE(h) ((ULONG)(h)->TypeIndex - 1)

#ifndef OBJ_KERNEL_HANDLE
#define OBJ_KERNEL_HANDLE 0x00000200L
#endif
#define OBP_KERNEL_HANDLE_BIT 0xFFFFFFFF80000000ULL

#define STATUS_OBJECT_TYPE_MISMATCH   ((NTSTATUS)0xC0000024L)
#define STATUS_ACCESS_DENIED          ((NTSTATUS)0xC0000022L)
#define STATUS_OBJECT_NAME_INVALID    ((NTSTATUS)0xC0000033L)
#define STATUS_OBJECT_PATH_NOT_FOUND  ((NTSTATUS)0xC000003AL)
#define STATUS_PROCEDURE_NOT_FOUND    ((NTSTATUS)0xC000007AL)
#define STATUS_INVALID_CID            ((NTSTATUS)0xC000000BL)
#define STATUS_INFO_LENGTH_MISMATCH   ((NTSTATUS)0xC0000004L)
#define STATUS_INVALID_INFO_CLASS     ((NTSTATUS)0xC0000003L)

#define SYNCHRONIZE          0x00100000UL
#define GENERIC_READ         0x80000000UL
#define GENERIC_WRITE        0x40000000UL
#define GENERIC_EXECUTE      0x20000000UL
#define GENERIC_ALL          0x10000000UL
#define MAXIMUM_ALLOWED      0x02000000UL

typedef struct _CLIENT_ID { HANDLE UniqueProcess, UniqueThread; } CLIENT_ID, *PCLIENT_ID;

NTSTATUS NTAPI ZwClose(HANDLE Handle);
HANDLE NTAPI PsGetCurrentProcessId(VOID);
HANDLE NTAPI PsGetCurrentThreadId(VOID);
HANDLE NTAPI PsGetProcessId(PVOID Process);
HANDLE NTAPI PsGetThreadId(PVOID Thread);
extern OBJECT_TYPE *ExEventObjectType, *PsThreadType, *PsProcessType;

NTSTATUS NTAPI ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess, PVOID ObjectType,
    KPROCESSOR_MODE AccessMode, PVOID *Object, PVOID HandleInformation);
VOID NTAPI ObDereferenceObject(PVOID Object);
VOID NTAPI KeClearEvent(PKEVENT Event);
LONG NTAPI KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait);
VOID NTAPI KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);

/* ob.c */
POBJECT_HEADER ObpCreate(ULONG Type, PUNICODE_STRING Name);
VOID ObpDereference(POBJECT_HEADER Header);
ACCESS_MASK ObpMapGeneric(ULONG Type, ACCESS_MASK Access);
NTSTATUS ObpInsertObjectHandle(PVOID Object, ACCESS_MASK Access, ULONG Attributes, PHANDLE Handle);
NTSTATUS ObpOpen(ULONG Type, POBJECT_ATTRIBUTES Attributes, ACCESS_MASK Access, PHANDLE Handle,
                 PBOOLEAN Created);
POBJECT_HEADER ObpLookupHandle(HANDLE Handle, KPROCESSOR_MODE Mode, ACCESS_MASK *Granted);
VOID ObpCloseUserHandles(VOID);
VOID ObpInitializeUserTable(PVOID Process);
PVOID ObpCreateNamedBody(ULONG Type, PCUNICODE_STRING Name, SIZE_T BodySize);
VOID ObpDeleteBody(PVOID Body);

/* file.c: the host file behind a file object goes with its last reference. */
VOID IopDeleteFile(PVOID File);

/* process.c */
extern PUCHAR PspUserProcess;               /* the simulated user process, or NULL */
BOOLEAN PspInUserProcess(VOID);
PVOID NTAPI PsGetCurrentProcess(VOID);

/* notify.c */
VOID PspNotifyProcess(PUCHAR Process, BOOLEAN Create, PUNICODE_STRING ImageName, NTSTATUS *CreationStatus);
VOID PspNotifyThread(PUCHAR Thread, BOOLEAN Create);
VOID PspNotifyImage(PUNICODE_STRING Name, HANDLE ProcessId, PVOID Base, SIZE_T Size, BOOLEAN System);
ACCESS_MASK ObpPreCreateHandle(POBJECT_HEADER Header, BOOLEAN KernelHandle, ACCESS_MASK Desired,
                               PVOID *Contexts);
VOID ObpPostCreateHandle(POBJECT_HEADER Header, BOOLEAN KernelHandle, ACCESS_MASK Granted,
                         NTSTATUS Status, PVOID *Contexts);
#define OBP_MAX_CALLBACK_OPERATIONS 32

#endif
