/*
 * ntdecl.h - the few Windows kernel types and prototypes that Track and trackdemo use.
 *
 * The project builds with clang-cl and lld-link and no WDK (simulated-target.md 3.1), so
 * the declarations a driver would take from wdm.h are written out here: real WDK names,
 * real x64 layouts (checked by static asserts), real prototypes and calling conventions.
 * Only what the two components call is declared; structures the driver never allocates
 * (DEVICE_OBJECT) stop after the last field it reads.
 *
 * The same sources also compile for the host with gcc (the test shim in
 * tests/simtarget/track_host implements these functions with libc). There ULONG must stay
 * 32 bits wide, so the fixed-width types branch on the compiler; every layout assert
 * holds in both builds.
 */
#ifndef NTDECL_H
#define NTDECL_H

#if defined(_MSC_VER)
#define NTKERNELAPI __declspec(dllimport)
#define NTSYSAPI __declspec(dllimport)
#define NTAPI __stdcall
#define FASTCALL __fastcall
#define POINTER_ALIGNMENT __declspec(align(8))
typedef unsigned long ULONG;
typedef long LONG;
typedef unsigned __int64 ULONG64;
typedef __int64 LONG64;
typedef unsigned __int64 ULONG_PTR;
#else
/* Host test build (LP64): the kernel functions come from the test shim. */
#define NTKERNELAPI
#define NTSYSAPI
#define NTAPI
#define __cdecl
#define FASTCALL
#define POINTER_ALIGNMENT __attribute__((aligned(8)))
typedef unsigned int ULONG;
typedef int LONG;
typedef unsigned long long ULONG64;
typedef long long LONG64;
typedef unsigned long ULONG_PTR;
#endif

#define VOID void
typedef char CHAR;
typedef char CCHAR;
typedef unsigned char UCHAR;
typedef short CSHORT;
typedef unsigned short USHORT;
typedef unsigned short WCHAR;
typedef UCHAR BOOLEAN;
typedef ULONG_PTR SIZE_T;
typedef void *PVOID;
typedef PVOID HANDLE;
typedef LONG NTSTATUS;
typedef UCHAR KIRQL;
typedef CCHAR KPROCESSOR_MODE;
typedef ULONG_PTR KSPIN_LOCK;
typedef ULONG ACCESS_MASK;
typedef ULONG DEVICE_TYPE;
typedef CHAR *PSTR;
typedef const CHAR *PCSTR;
typedef const CHAR *PCSZ;
typedef const WCHAR *PCWSTR;
typedef UCHAR *PUCHAR;
typedef BOOLEAN *PBOOLEAN;
typedef HANDLE *PHANDLE;
typedef KSPIN_LOCK *PKSPIN_LOCK;

#define TRUE 1
#define FALSE 0
#define NULL ((void *)0)

#define NT_SUCCESS(Status) ((NTSTATUS)(Status) >= 0)
#define STATUS_SUCCESS ((NTSTATUS)0x00000000L)
#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001L)
#define STATUS_INVALID_DEVICE_REQUEST ((NTSTATUS)0xC0000010L)
#define STATUS_INSUFFICIENT_RESOURCES ((NTSTATUS)0xC000009AL)

#define PASSIVE_LEVEL 0
#define APC_LEVEL 1
#define DISPATCH_LEVEL 2

#define KernelMode 0

typedef union _LARGE_INTEGER {
    struct {
        ULONG LowPart;
        LONG HighPart;
    } u;
    LONG64 QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;
typedef LARGE_INTEGER PHYSICAL_ADDRESS;

typedef struct _LIST_ENTRY {
    struct _LIST_ENTRY *Flink;
    struct _LIST_ENTRY *Blink;
} LIST_ENTRY, *PLIST_ENTRY;

typedef struct _UNICODE_STRING {
    USHORT Length;
    USHORT MaximumLength;
    WCHAR *Buffer;
} UNICODE_STRING, *PUNICODE_STRING;
typedef const UNICODE_STRING *PCUNICODE_STRING;

typedef struct _STRING {
    USHORT Length;
    USHORT MaximumLength;
    CHAR *Buffer;
} STRING, ANSI_STRING, *PANSI_STRING;
typedef const STRING *PCANSI_STRING;

typedef enum _POOL_TYPE {
    NonPagedPool = 0,
    PagedPool = 1
} POOL_TYPE;

typedef enum _MEMORY_CACHING_TYPE {
    MmNonCached = 0,
    MmCached = 1,
    MmWriteCombined = 2
} MEMORY_CACHING_TYPE;

typedef struct _IO_STATUS_BLOCK {
    union {
        NTSTATUS Status;
        PVOID Pointer;
    };
    ULONG_PTR Information;
} IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;

typedef struct _OBJECT_ATTRIBUTES {
    ULONG Length;
    HANDLE RootDirectory;
    PUNICODE_STRING ObjectName;
    ULONG Attributes;
    PVOID SecurityDescriptor;
    PVOID SecurityQualityOfService;
} OBJECT_ATTRIBUTES, *POBJECT_ATTRIBUTES;

#define OBJ_CASE_INSENSITIVE 0x00000040L
#define OBJ_KERNEL_HANDLE 0x00000200L

#define InitializeObjectAttributes(p, n, a, r, s) \
    do {                                          \
        (p)->Length = sizeof(OBJECT_ATTRIBUTES);  \
        (p)->RootDirectory = (r);                 \
        (p)->Attributes = (a);                    \
        (p)->ObjectName = (n);                    \
        (p)->SecurityDescriptor = (s);            \
        (p)->SecurityQualityOfService = NULL;     \
    } while (0)

/* Opaque to the driver: only pointers to these are passed around. */
typedef struct _MDL MDL, *PMDL;
typedef struct _KEVENT KEVENT, *PKEVENT;
typedef struct _FILE_OBJECT FILE_OBJECT, *PFILE_OBJECT;

/* KAPC is only needed for the size of the IRP's Tail union (x64: 0x58 bytes). */
typedef struct _KAPC {
    UCHAR Reserved[0x58];
} KAPC;

struct _DRIVER_OBJECT;
struct _IRP;

typedef struct _DEVICE_OBJECT {
    CSHORT Type;
    USHORT Size;
    LONG ReferenceCount;
    struct _DRIVER_OBJECT *DriverObject;
    struct _DEVICE_OBJECT *NextDevice;
    struct _DEVICE_OBJECT *AttachedDevice;
    struct _IRP *CurrentIrp;
    PVOID Timer;
    ULONG Flags;
    ULONG Characteristics;
    PVOID Vpb;
    PVOID DeviceExtension;
    DEVICE_TYPE DeviceType;
    CCHAR StackSize;
    /* The rest of the real structure (Queue ... Reserved, 0x150 bytes in all) is never
       touched by the driver, which does not allocate device objects itself. */
} DEVICE_OBJECT, *PDEVICE_OBJECT;

typedef struct _IO_STACK_LOCATION {
    UCHAR MajorFunction;
    UCHAR MinorFunction;
    UCHAR Flags;
    UCHAR Control;
    union {
        struct {
            ULONG OutputBufferLength;
            ULONG POINTER_ALIGNMENT InputBufferLength;
            ULONG POINTER_ALIGNMENT IoControlCode;
            PVOID Type3InputBuffer;
        } DeviceIoControl;
        struct {
            PVOID Argument1;
            PVOID Argument2;
            PVOID Argument3;
            PVOID Argument4;
        } Others;
    } Parameters;
    PDEVICE_OBJECT DeviceObject;
    PFILE_OBJECT FileObject;
    PVOID CompletionRoutine;
    PVOID Context;
} IO_STACK_LOCATION, *PIO_STACK_LOCATION;

typedef struct _IRP {
    CSHORT Type;
    USHORT Size;
    PMDL MdlAddress;
    ULONG Flags;
    union {
        struct _IRP *MasterIrp;
        LONG IrpCount;
        PVOID SystemBuffer;
    } AssociatedIrp;
    LIST_ENTRY ThreadListEntry;
    IO_STATUS_BLOCK IoStatus;
    KPROCESSOR_MODE RequestorMode;
    BOOLEAN PendingReturned;
    CHAR StackCount;
    CHAR CurrentLocation;
    BOOLEAN Cancel;
    KIRQL CancelIrql;
    CCHAR ApcEnvironment;
    UCHAR AllocationFlags;
    PIO_STATUS_BLOCK UserIosb;
    PKEVENT UserEvent;
    union {
        struct {
            PVOID UserApcRoutine;
            PVOID UserApcContext;
        } AsynchronousParameters;
        LARGE_INTEGER AllocationSize;
    } Overlay;
    PVOID CancelRoutine;
    PVOID UserBuffer;
    union {
        struct {
            PVOID DriverContext[4];
            PVOID Thread;
            CHAR *AuxiliaryBuffer;
            struct {
                LIST_ENTRY ListEntry;
                union {
                    struct _IO_STACK_LOCATION *CurrentStackLocation;
                    ULONG PacketType;
                };
            };
            PFILE_OBJECT OriginalFileObject;
        } Overlay;
        KAPC Apc;
        PVOID CompletionKey;
    } Tail;
} IRP, *PIRP;

typedef NTSTATUS NTAPI DRIVER_DISPATCH(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef DRIVER_DISPATCH *PDRIVER_DISPATCH;
typedef VOID NTAPI DRIVER_UNLOAD(struct _DRIVER_OBJECT *DriverObject);
typedef DRIVER_UNLOAD *PDRIVER_UNLOAD;
typedef NTSTATUS NTAPI DRIVER_INITIALIZE(struct _DRIVER_OBJECT *DriverObject,
                                         PUNICODE_STRING RegistryPath);
typedef DRIVER_INITIALIZE *PDRIVER_INITIALIZE;

#define IRP_MJ_CREATE 0x00
#define IRP_MJ_CLOSE 0x02
#define IRP_MJ_DEVICE_CONTROL 0x0e
#define IRP_MJ_MAXIMUM_FUNCTION 0x1b

typedef struct _DRIVER_OBJECT {
    CSHORT Type;
    CSHORT Size;
    PDEVICE_OBJECT DeviceObject;
    ULONG Flags;
    PVOID DriverStart;
    ULONG DriverSize;
    PVOID DriverSection;
    PVOID DriverExtension;
    UNICODE_STRING DriverName;
    PUNICODE_STRING HardwareDatabase;
    PVOID FastIoDispatch;
    PDRIVER_INITIALIZE DriverInit;
    PVOID DriverStartIo;
    PDRIVER_UNLOAD DriverUnload;
    PDRIVER_DISPATCH MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1];
} DRIVER_OBJECT, *PDRIVER_OBJECT;

#define FILE_DEVICE_UNKNOWN 0x00000022
#define IO_NO_INCREMENT 0

#define DIRECTORY_ALL_ACCESS 0x000F000FL
#define KEY_READ 0x00020019L
#define SECTION_QUERY 0x0001
#define GENERIC_READ 0x80000000L
#define SYNCHRONIZE 0x00100000L
#define FILE_SHARE_READ 0x00000001
#define FILE_ATTRIBUTE_NORMAL 0x00000080
#define FILE_OPEN 0x00000001
#define FILE_SYNCHRONOUS_IO_NONALERT 0x00000020

/* Real x64 offsets, agreed with the simulated kernel that builds these objects. */
#define NTDECL_OFFSET(t, f) __builtin_offsetof(t, f)
_Static_assert(sizeof(PVOID) == 8, "x64 layouts only");
_Static_assert(sizeof(ULONG) == 4, "ULONG is 32 bits");
_Static_assert(NTDECL_OFFSET(DRIVER_OBJECT, DeviceObject) == 0x08, "DRIVER_OBJECT");
_Static_assert(NTDECL_OFFSET(DRIVER_OBJECT, DriverStart) == 0x18, "DRIVER_OBJECT");
_Static_assert(NTDECL_OFFSET(DRIVER_OBJECT, DriverName) == 0x38, "DRIVER_OBJECT");
_Static_assert(NTDECL_OFFSET(DRIVER_OBJECT, DriverInit) == 0x58, "DRIVER_OBJECT");
_Static_assert(NTDECL_OFFSET(DRIVER_OBJECT, DriverUnload) == 0x68, "DRIVER_OBJECT");
_Static_assert(NTDECL_OFFSET(DRIVER_OBJECT, MajorFunction) == 0x70, "DRIVER_OBJECT");
_Static_assert(sizeof(DRIVER_OBJECT) == 0x150, "DRIVER_OBJECT");
_Static_assert(NTDECL_OFFSET(DEVICE_OBJECT, DriverObject) == 0x08, "DEVICE_OBJECT");
_Static_assert(NTDECL_OFFSET(DEVICE_OBJECT, Flags) == 0x30, "DEVICE_OBJECT");
_Static_assert(NTDECL_OFFSET(DEVICE_OBJECT, DeviceExtension) == 0x40, "DEVICE_OBJECT");
_Static_assert(NTDECL_OFFSET(DEVICE_OBJECT, DeviceType) == 0x48, "DEVICE_OBJECT");
_Static_assert(NTDECL_OFFSET(DEVICE_OBJECT, StackSize) == 0x4C, "DEVICE_OBJECT");
_Static_assert(NTDECL_OFFSET(IRP, MdlAddress) == 0x08, "IRP");
_Static_assert(NTDECL_OFFSET(IRP, AssociatedIrp.SystemBuffer) == 0x18, "IRP");
_Static_assert(NTDECL_OFFSET(IRP, IoStatus.Status) == 0x30, "IRP");
_Static_assert(NTDECL_OFFSET(IRP, IoStatus.Information) == 0x38, "IRP");
_Static_assert(NTDECL_OFFSET(IRP, StackCount) == 0x42, "IRP");
_Static_assert(NTDECL_OFFSET(IRP, CurrentLocation) == 0x43, "IRP");
_Static_assert(NTDECL_OFFSET(IRP, Tail.Overlay.CurrentStackLocation) == 0xB8, "IRP");
_Static_assert(sizeof(IRP) == 0xD0, "IRP");
_Static_assert(NTDECL_OFFSET(IO_STACK_LOCATION, MajorFunction) == 0x00, "IO_STACK_LOCATION");
_Static_assert(NTDECL_OFFSET(IO_STACK_LOCATION, Parameters.DeviceIoControl.OutputBufferLength) == 0x08,
               "IO_STACK_LOCATION");
_Static_assert(NTDECL_OFFSET(IO_STACK_LOCATION, Parameters.DeviceIoControl.InputBufferLength) == 0x10,
               "IO_STACK_LOCATION");
_Static_assert(NTDECL_OFFSET(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode) == 0x18,
               "IO_STACK_LOCATION");
_Static_assert(NTDECL_OFFSET(IO_STACK_LOCATION, Parameters.DeviceIoControl.Type3InputBuffer) == 0x20,
               "IO_STACK_LOCATION");
_Static_assert(NTDECL_OFFSET(IO_STACK_LOCATION, DeviceObject) == 0x28, "IO_STACK_LOCATION");
_Static_assert(NTDECL_OFFSET(IO_STACK_LOCATION, FileObject) == 0x30, "IO_STACK_LOCATION");
_Static_assert(sizeof(IO_STACK_LOCATION) == 0x48, "IO_STACK_LOCATION");
_Static_assert(sizeof(OBJECT_ATTRIBUTES) == 0x30, "OBJECT_ATTRIBUTES");
_Static_assert(sizeof(UNICODE_STRING) == 0x10, "UNICODE_STRING");

/* IoGetCurrentIrpStackLocation is an inline accessor in wdm.h, not an export. */
static __inline PIO_STACK_LOCATION IoGetCurrentIrpStackLocation(PIRP Irp)
{
    return Irp->Tail.Overlay.CurrentStackLocation;
}

/* On x64, wdm.h inlines KeInitializeSpinLock and maps KeAcquireSpinLock onto the
   exported KeAcquireSpinLockRaiseToDpc. */
static __inline VOID KeInitializeSpinLock(PKSPIN_LOCK SpinLock)
{
    *SpinLock = 0;
}
#define KeAcquireSpinLock(SpinLock, OldIrql) (*(OldIrql) = KeAcquireSpinLockRaiseToDpc(SpinLock))

static __inline VOID InitializeListHead(PLIST_ENTRY ListHead)
{
    ListHead->Flink = ListHead->Blink = ListHead;
}

static __inline VOID InsertHeadList(PLIST_ENTRY ListHead, PLIST_ENTRY Entry)
{
    PLIST_ENTRY first = ListHead->Flink;
    Entry->Flink = first;
    Entry->Blink = ListHead;
    first->Blink = Entry;
    ListHead->Flink = Entry;
}

static __inline VOID RemoveEntryList(PLIST_ENTRY Entry)
{
    PLIST_ENTRY next = Entry->Flink;
    PLIST_ENTRY prev = Entry->Blink;
    prev->Flink = next;
    next->Blink = prev;
}

#define CONTAINING_RECORD(address, type, field) \
    ((type *)((CHAR *)(address) - (ULONG_PTR)NTDECL_OFFSET(type, field)))

/* Debugging support. As in wdm.h, KdDebuggerEnabled is declared without dllimport as a
   PBOOLEAN: the kernel exports its BOOLEAN as a CONSTANT import, so the name binds to the
   import-table slot, which holds the BOOLEAN's address (track.md, "Companion debugging
   helpers"). The flag is read through that pointer; testing the pointer itself would
   always be true, the mistake old headers invited. */
NTSYSAPI ULONG __cdecl DbgPrint(PCSTR Format, ...) __attribute__((format(printf, 1, 2)));
NTSYSAPI VOID NTAPI DbgBreakPoint(VOID);
NTSYSAPI VOID NTAPI RtlAssert(PVOID VoidFailedAssertion, PVOID VoidFileName, ULONG LineNumber,
                              PSTR MutableMessage);
extern PBOOLEAN KdDebuggerEnabled;

/* IRQL and spin locks. */
NTKERNELAPI KIRQL NTAPI KeGetCurrentIrql(VOID);
NTKERNELAPI KIRQL NTAPI KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock);
NTKERNELAPI VOID NTAPI KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql);

/* Memory helpers: RtlFillMemory/RtlCopyMemory are macros over the C runtime exports. */
#if defined(_MSC_VER)
NTSYSAPI void *__cdecl memset(void *Destination, int Value, SIZE_T Length);
NTSYSAPI void *__cdecl memcpy(void *Destination, const void *Source, SIZE_T Length);
#else
#include <string.h>
#endif
#define RtlFillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define RtlZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define RtlCopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))

/* Strings. */
NTSYSAPI VOID NTAPI RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString);
NTSYSAPI VOID NTAPI RtlInitAnsiString(PANSI_STRING DestinationString, PCSZ SourceString);
NTSYSAPI NTSTATUS NTAPI RtlAnsiStringToUnicodeString(PUNICODE_STRING DestinationString,
                                                     PCANSI_STRING SourceString,
                                                     BOOLEAN AllocateDestinationString);
NTSYSAPI VOID NTAPI RtlFreeUnicodeString(PUNICODE_STRING UnicodeString);
NTSYSAPI NTSTATUS NTAPI RtlUnicodeStringToAnsiString(PANSI_STRING DestinationString,
                                                     PCUNICODE_STRING SourceString,
                                                     BOOLEAN AllocateDestinationString);
NTSYSAPI VOID NTAPI RtlFreeAnsiString(PANSI_STRING AnsiString);

/* Pool and memory manager. */
NTKERNELAPI PVOID NTAPI ExAllocatePool(POOL_TYPE PoolType, SIZE_T NumberOfBytes);
NTKERNELAPI PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
NTKERNELAPI PVOID NTAPI ExAllocatePoolWithQuota(POOL_TYPE PoolType, SIZE_T NumberOfBytes);
NTKERNELAPI PVOID NTAPI ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes,
                                                   ULONG Tag);
NTKERNELAPI VOID NTAPI ExFreePool(PVOID P);
NTKERNELAPI PVOID NTAPI MmAllocateContiguousMemory(SIZE_T NumberOfBytes,
                                                   PHYSICAL_ADDRESS HighestAcceptableAddress);
NTKERNELAPI VOID NTAPI MmFreeContiguousMemory(PVOID BaseAddress);
NTKERNELAPI PVOID NTAPI MmAllocateNonCachedMemory(SIZE_T NumberOfBytes);
NTKERNELAPI VOID NTAPI MmFreeNonCachedMemory(PVOID BaseAddress, SIZE_T NumberOfBytes);
NTKERNELAPI PVOID NTAPI MmMapIoSpace(PHYSICAL_ADDRESS PhysicalAddress, SIZE_T NumberOfBytes,
                                     MEMORY_CACHING_TYPE CacheType);
NTKERNELAPI VOID NTAPI MmUnmapIoSpace(PVOID BaseAddress, SIZE_T NumberOfBytes);
NTKERNELAPI PVOID NTAPI MmMapLockedPages(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode);
NTKERNELAPI VOID NTAPI MmUnmapLockedPages(PVOID BaseAddress, PMDL MemoryDescriptorList);

/* I/O manager. */
NTKERNELAPI NTSTATUS NTAPI IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
                                          PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType,
                                          ULONG DeviceCharacteristics, BOOLEAN Exclusive,
                                          PDEVICE_OBJECT *DeviceObject);
NTKERNELAPI VOID NTAPI IoDeleteDevice(PDEVICE_OBJECT DeviceObject);
NTKERNELAPI VOID FASTCALL IofCompleteRequest(PIRP Irp, CCHAR PriorityBoost);
#define IoCompleteRequest(Irp, PriorityBoost) IofCompleteRequest((Irp), (PriorityBoost))
NTKERNELAPI PMDL NTAPI IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                                     BOOLEAN ChargeQuota, PIRP Irp);
NTKERNELAPI VOID NTAPI IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress,
                                         ULONG Length);
NTKERNELAPI VOID NTAPI IoFreeMdl(PMDL Mdl);
NTKERNELAPI PKEVENT NTAPI IoCreateNotificationEvent(PUNICODE_STRING EventName,
                                                    PHANDLE EventHandle);
NTKERNELAPI PKEVENT NTAPI IoCreateSynchronizationEvent(PUNICODE_STRING EventName,
                                                       PHANDLE EventHandle);

/* Object manager (Zw calls from kernel mode). */
NTSYSAPI NTSTATUS NTAPI ZwClose(HANDLE Handle);
NTSYSAPI NTSTATUS NTAPI ZwCreateDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
                                                POBJECT_ATTRIBUTES ObjectAttributes);
NTSYSAPI NTSTATUS NTAPI ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                                     POBJECT_ATTRIBUTES ObjectAttributes,
                                     PIO_STATUS_BLOCK IoStatusBlock, PLARGE_INTEGER AllocationSize,
                                     ULONG FileAttributes, ULONG ShareAccess,
                                     ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer,
                                     ULONG EaLength);
NTSYSAPI NTSTATUS NTAPI ZwOpenKey(PHANDLE KeyHandle, ACCESS_MASK DesiredAccess,
                                  POBJECT_ATTRIBUTES ObjectAttributes);
NTSYSAPI NTSTATUS NTAPI ZwOpenSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess,
                                      POBJECT_ATTRIBUTES ObjectAttributes);

#endif /* NTDECL_H */
