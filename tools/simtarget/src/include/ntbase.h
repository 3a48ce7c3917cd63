/*
 * ntbase.h - basic NT types, structures and prototypes shared by the simulated
 * kernel (ntoskrnl.exe), hal.dll and kdcom.dll.
 *
 * Layouts are the real Windows x64 ones (kd-protocol.md section 7, the I/O model of
 * the simulated-target design); only the fields this kernel uses are named, the rest
 * is padding so every named field sits at its real offset.  This header is kernel
 * internal: drivers bring their own declarations and link against ntoskrnl.lib.
 */
#ifndef KSIM_NTBASE_H
#define KSIM_NTBASE_H

typedef unsigned char UCHAR, BOOLEAN, *PUCHAR, *PBOOLEAN, KIRQL, *PKIRQL;
typedef char CHAR, CCHAR, *PCHAR, *PSTR;
typedef const char *PCSTR, *PCCH;
typedef unsigned short USHORT, WCHAR, *PUSHORT, *PWSTR, *PWCH, CSHORT;
typedef const unsigned short *PCWSTR;
typedef short SHORT;
typedef unsigned long ULONG, *PULONG, LOGICAL;
typedef long LONG, *PLONG, NTSTATUS;
typedef unsigned long long ULONG64, ULONGLONG, ULONG_PTR, SIZE_T, *PULONG64, *PULONG_PTR,
    *PSIZE_T, KSPIN_LOCK, *PKSPIN_LOCK, KAFFINITY;
typedef long long LONG64, LONGLONG, LONG_PTR;
typedef void VOID, *PVOID, *HANDLE, **PHANDLE;
typedef ULONG ACCESS_MASK, DEVICE_TYPE;
typedef int BOOL;

#define TRUE 1
#define FALSE 0
#define NULL ((void *)0)
#define NTAPI __stdcall
#define DECLSPEC_NORETURN __declspec(noreturn)
#define NT_SUCCESS(s) ((NTSTATUS)(s) >= 0)
#define FIELD_OFFSET(t, f) ((LONG)__builtin_offsetof(t, f))
#define CONTAINING_RECORD(a, t, f) ((t *)((PCHAR)(a) - (ULONG_PTR)(&((t *)0)->f)))
#define STATIC_ASSERT(e) _Static_assert(e, #e)
#define PAGE_SIZE 0x1000ULL
#define ROUND_UP(x, a) (((x) + (a) - 1) & ~((ULONG_PTR)(a) - 1))

typedef union _LARGE_INTEGER {
    struct { ULONG LowPart; LONG HighPart; };
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER, PHYSICAL_ADDRESS, *PPHYSICAL_ADDRESS;

typedef struct _LIST_ENTRY { struct _LIST_ENTRY *Flink, *Blink; } LIST_ENTRY, *PLIST_ENTRY;

/* wdm.h's list routines.  InsertTailList(Entry, New) also puts New just before Entry
 * in whatever list Entry is in. */
static __inline VOID InitializeListHead(PLIST_ENTRY Head) { Head->Flink = Head->Blink = Head; }

static __inline VOID InsertTailList(PLIST_ENTRY Head, PLIST_ENTRY Entry)
{
    Entry->Flink = Head;
    Entry->Blink = Head->Blink;
    Head->Blink->Flink = Entry;
    Head->Blink = Entry;
}

static __inline VOID InsertHeadList(PLIST_ENTRY Head, PLIST_ENTRY Entry)
{
    Entry->Blink = Head;
    Entry->Flink = Head->Flink;
    Head->Flink->Blink = Entry;
    Head->Flink = Entry;
}

static __inline VOID RemoveEntryList(PLIST_ENTRY Entry)
{
    Entry->Blink->Flink = Entry->Flink;
    Entry->Flink->Blink = Entry->Blink;
}

typedef struct _UNICODE_STRING { USHORT Length, MaximumLength; PWSTR Buffer; }
    UNICODE_STRING, *PUNICODE_STRING;
typedef const UNICODE_STRING *PCUNICODE_STRING;
typedef struct _STRING { USHORT Length, MaximumLength; PCHAR Buffer; }
    STRING, ANSI_STRING, *PSTRING, *PANSI_STRING;
typedef const STRING *PCANSI_STRING;

typedef struct _OBJECT_ATTRIBUTES {
    ULONG Length; HANDLE RootDirectory; PUNICODE_STRING ObjectName; ULONG Attributes;
    PVOID SecurityDescriptor, SecurityQualityOfService;
} OBJECT_ATTRIBUTES, *POBJECT_ATTRIBUTES;

typedef struct _IO_STATUS_BLOCK { union { NTSTATUS Status; PVOID Pointer; }; ULONG_PTR Information; }
    IO_STATUS_BLOCK, *PIO_STATUS_BLOCK;

/* NTSTATUS values */
#define STATUS_SUCCESS                  ((NTSTATUS)0x00000000L)
#define STATUS_PENDING                  ((NTSTATUS)0x00000103L)
#define STATUS_BREAKPOINT               ((NTSTATUS)0x80000003L)
#define STATUS_UNSUCCESSFUL             ((NTSTATUS)0xC0000001L)
#define STATUS_NOT_IMPLEMENTED          ((NTSTATUS)0xC0000002L)
#define STATUS_INVALID_HANDLE           ((NTSTATUS)0xC0000008L)
#define STATUS_INVALID_PARAMETER        ((NTSTATUS)0xC000000DL)
#define STATUS_INVALID_DEVICE_REQUEST   ((NTSTATUS)0xC0000010L)
#define STATUS_NO_MEMORY                ((NTSTATUS)0xC0000017L)
#define STATUS_OBJECT_NAME_COLLISION    ((NTSTATUS)0xC0000035L)
#define STATUS_INSUFFICIENT_RESOURCES   ((NTSTATUS)0xC000009AL)
#define STATUS_NAME_TOO_LONG            ((NTSTATUS)0xC0000106L)
#define STATUS_BUFFER_OVERFLOW          ((NTSTATUS)0x80000005L)
#define STATUS_ACCESS_VIOLATION         ((NTSTATUS)0xC0000005L)

/* IRQLs (x64) */
#define PASSIVE_LEVEL  0
#define APC_LEVEL      1
#define DISPATCH_LEVEL 2
#define CLOCK_LEVEL    13
#define HIGH_LEVEL     15

/* Pool types */
typedef enum _POOL_TYPE {
    NonPagedPool = 0, PagedPool = 1, NonPagedPoolMustSucceed = 2, DontUseThisType = 3,
    NonPagedPoolCacheAligned = 4, PagedPoolCacheAligned = 5,
    NonPagedPoolCacheAlignedMustS = 6, NonPagedPoolNx = 512
} POOL_TYPE;

typedef enum _MEMORY_CACHING_TYPE { MmNonCached = 0, MmCached = 1, MmWriteCombined = 2 }
    MEMORY_CACHING_TYPE;
typedef enum _MODE { KernelMode = 0, UserMode = 1 } MODE, KPROCESSOR_MODE;
typedef enum _EVENT_TYPE { NotificationEvent = 0, SynchronizationEvent = 1 } EVENT_TYPE;

/* Dispatcher header and event (x64 KEVENT, 0x18 bytes) */
typedef struct _DISPATCHER_HEADER {
    UCHAR Type, Absolute, Size, Inserted;
    LONG SignalState;
    LIST_ENTRY WaitListHead;
} DISPATCHER_HEADER;
typedef struct _KEVENT { DISPATCHER_HEADER Header; } KEVENT, *PKEVENT;
STATIC_ASSERT(sizeof(KEVENT) == 0x18);

/* Memory descriptor list (x64 MDL header, 0x30 bytes, PFN array follows) */
typedef struct _MDL {
    struct _MDL *Next;
    CSHORT Size;
    CSHORT MdlFlags;
    ULONG Pad0;
    PVOID Process;
    PVOID MappedSystemVa;
    PVOID StartVa;
    ULONG ByteCount;
    ULONG ByteOffset;
} MDL, *PMDL;
STATIC_ASSERT(sizeof(MDL) == 0x30);
#define MDL_MAPPED_TO_SYSTEM_VA 0x0001
#define MDL_PAGES_LOCKED        0x0002
#define MDL_SOURCE_IS_NONPAGED_POOL 0x0004
#define MDL_PARTIAL             0x0010

/* I/O manager objects (x64 layouts agreed for the demo driver) */
struct _DEVICE_OBJECT;
struct _DRIVER_OBJECT;
struct _IRP;
typedef NTSTATUS (NTAPI *PDRIVER_DISPATCH)(struct _DEVICE_OBJECT *, struct _IRP *);
typedef VOID (NTAPI *PDRIVER_UNLOAD)(struct _DRIVER_OBJECT *);
typedef NTSTATUS (NTAPI *PDRIVER_INITIALIZE)(struct _DRIVER_OBJECT *, PUNICODE_STRING);

#define IRP_MJ_CREATE         0x00
#define IRP_MJ_CLOSE          0x02
#define IRP_MJ_DEVICE_CONTROL 0x0E
#define IRP_MJ_MAXIMUM_FUNCTION 0x1B

typedef struct _DRIVER_OBJECT {
    CSHORT Type;                      /* 0x00: IO_TYPE_DRIVER (4) */
    CSHORT Size;                      /* 0x02 */
    ULONG Pad0;
    struct _DEVICE_OBJECT *DeviceObject;  /* 0x08 */
    ULONG Flags;                      /* 0x10 */
    ULONG Pad1;
    PVOID DriverStart;                /* 0x18 */
    ULONG DriverSize;                 /* 0x20 */
    ULONG Pad2;
    PVOID DriverSection;              /* 0x28: the KLDR_DATA_TABLE_ENTRY */
    PVOID DriverExtension;            /* 0x30 */
    UNICODE_STRING DriverName;        /* 0x38 */
    PUNICODE_STRING HardwareDatabase; /* 0x48 */
    PVOID FastIoDispatch;             /* 0x50 */
    PDRIVER_INITIALIZE DriverInit;    /* 0x58 */
    PVOID DriverStartIo;              /* 0x60 */
    PDRIVER_UNLOAD DriverUnload;      /* 0x68 */
    PDRIVER_DISPATCH MajorFunction[IRP_MJ_MAXIMUM_FUNCTION + 1]; /* 0x70 */
} DRIVER_OBJECT, *PDRIVER_OBJECT;
STATIC_ASSERT(sizeof(DRIVER_OBJECT) == 0x150);
STATIC_ASSERT(FIELD_OFFSET(DRIVER_OBJECT, DriverUnload) == 0x68);

typedef struct _DEVICE_OBJECT {
    CSHORT Type;                      /* 0x00: IO_TYPE_DEVICE (3) */
    USHORT Size;                      /* 0x02 */
    LONG ReferenceCount;              /* 0x04 */
    PDRIVER_OBJECT DriverObject;      /* 0x08 */
    struct _DEVICE_OBJECT *NextDevice;/* 0x10 */
    struct _DEVICE_OBJECT *AttachedDevice; /* 0x18 */
    struct _IRP *CurrentIrp;          /* 0x20 */
    PVOID Timer;                      /* 0x28 */
    ULONG Flags;                      /* 0x30 */
    ULONG Characteristics;            /* 0x34 */
    PVOID Vpb;                        /* 0x38 */
    PVOID DeviceExtension;            /* 0x40 */
    DEVICE_TYPE DeviceType;           /* 0x48 */
    CCHAR StackSize;                  /* 0x4C */
    UCHAR Pad0[3];
    UCHAR Rest[0x150 - 0x50];         /* queue, alignment, DPC, ... up to the real size */
    UNICODE_STRING KsimName;          /* kernel-private: the name given to IoCreateDevice */
} DEVICE_OBJECT, *PDEVICE_OBJECT;
STATIC_ASSERT(FIELD_OFFSET(DEVICE_OBJECT, DeviceExtension) == 0x40);
STATIC_ASSERT(FIELD_OFFSET(DEVICE_OBJECT, StackSize) == 0x4C);

typedef struct _IO_STACK_LOCATION {
    UCHAR MajorFunction;              /* 0x00 */
    UCHAR MinorFunction;              /* 0x01 */
    UCHAR Flags, Control;
    ULONG Pad0;
    union {
        struct {
            ULONG OutputBufferLength; /* 0x08 */
            ULONG Pad1;
            ULONG InputBufferLength;  /* 0x10 */
            ULONG Pad2;
            ULONG IoControlCode;      /* 0x18 */
            ULONG Pad3;
            PVOID Type3InputBuffer;   /* 0x20 */
        } DeviceIoControl;
        struct { PVOID Argument1, Argument2, Argument3, Argument4; } Others;
    } Parameters;
    PDEVICE_OBJECT DeviceObject;      /* 0x28 */
    PVOID FileObject;                 /* 0x30 */
    PVOID CompletionRoutine;          /* 0x38 */
    PVOID Context;                    /* 0x40 */
} IO_STACK_LOCATION, *PIO_STACK_LOCATION;
STATIC_ASSERT(sizeof(IO_STACK_LOCATION) == 0x48);
STATIC_ASSERT(FIELD_OFFSET(IO_STACK_LOCATION, Parameters.DeviceIoControl.IoControlCode) == 0x18);

typedef struct _IRP {
    CSHORT Type;                      /* 0x00: IO_TYPE_IRP (6) */
    USHORT Size;                      /* 0x02 */
    ULONG Pad0;
    PMDL MdlAddress;                  /* 0x08 */
    ULONG Flags;                      /* 0x10 */
    ULONG Pad1;
    union { struct _IRP *MasterIrp; LONG IrpCount; PVOID SystemBuffer; } AssociatedIrp; /* 0x18 */
    LIST_ENTRY ThreadListEntry;       /* 0x20 */
    IO_STATUS_BLOCK IoStatus;         /* 0x30 */
    CCHAR RequestorMode;              /* 0x40 */
    BOOLEAN PendingReturned;          /* 0x41 */
    CCHAR StackCount;                 /* 0x42 */
    CCHAR CurrentLocation;            /* 0x43 */
    UCHAR Cancel, CancelIrql, ApcEnvironment, AllocationFlags; /* 0x44 */
    PIO_STATUS_BLOCK UserIosb;        /* 0x48 */
    PKEVENT UserEvent;                /* 0x50 */
    UCHAR Overlay[0x10];              /* 0x58 */
    PVOID CancelRoutine;              /* 0x68 */
    PVOID UserBuffer;                 /* 0x70 */
    UCHAR TailPad[0x40];              /* 0x78: DeviceQueueEntry, Thread, AuxiliaryBuffer, ListEntry */
    PIO_STACK_LOCATION CurrentStackLocation; /* 0xB8: Tail.Overlay.CurrentStackLocation */
    PVOID OriginalFileObject;         /* 0xC0 */
    PVOID IrpExtension;               /* 0xC8 */
} IRP, *PIRP;
STATIC_ASSERT(sizeof(IRP) == 0xD0);
STATIC_ASSERT(FIELD_OFFSET(IRP, CurrentStackLocation) == 0xB8);
STATIC_ASSERT(FIELD_OFFSET(IRP, IoStatus) == 0x30);

#define IO_TYPE_DEVICE 3
#define IO_TYPE_DRIVER 4
#define IO_TYPE_IRP    6
#define IO_NO_INCREMENT 0

/* Kernel-mode loader entry (KLDR_DATA_TABLE_ENTRY, x64).  The fields the debugger
 * walks sit at the offsets of kd-protocol.md 7.3; CheckSum and TimeDateStamp are
 * filled by the loader so that LoadSymbols reports need no header reads. */
typedef struct _KLDR_DATA_TABLE_ENTRY {
    LIST_ENTRY InLoadOrderLinks;      /* 0x00 */
    PVOID ExceptionTable;             /* 0x10 */
    ULONG ExceptionTableSize;         /* 0x18 */
    ULONG Pad0;
    PVOID GpValue;                    /* 0x20 */
    PVOID NonPagedDebugInfo;          /* 0x28 */
    PVOID DllBase;                    /* 0x30 */
    PVOID EntryPoint;                 /* 0x38 */
    ULONG SizeOfImage;                /* 0x40 */
    ULONG Pad1;
    UNICODE_STRING FullDllName;       /* 0x48 */
    UNICODE_STRING BaseDllName;       /* 0x58 */
    ULONG Flags;                      /* 0x68 */
    USHORT LoadCount;                 /* 0x6C */
    USHORT Pad2;
    PVOID SectionPointer;             /* 0x70 */
    ULONG CheckSum;                   /* 0x78 */
    ULONG Pad3;
    ULONG TimeDateStamp;              /* 0x80 */
    ULONG Pad4;
    PVOID LoadedImports;              /* 0x88 */
    PVOID PatchInformation;           /* 0x90 */
    PVOID Reserved;                   /* 0x98 */
} KLDR_DATA_TABLE_ENTRY, *PKLDR_DATA_TABLE_ENTRY;
STATIC_ASSERT(sizeof(KLDR_DATA_TABLE_ENTRY) == 0xA0);
STATIC_ASSERT(FIELD_OFFSET(KLDR_DATA_TABLE_ENTRY, BaseDllName) == 0x58);

#define LDRP_IMAGE_DLL           0x00000004
#define LDRP_ENTRY_PROCESSED     0x00004000
#define LDRP_KSIM_SYSTEM_IMAGE   0x00000001   /* ntoskrnl, hal, kdcom: never unloaded */
#define LDRP_KSIM_DRIVER         0x00000002   /* a driver whose DriverEntry the kernel calls */

/* KD_SYMBOLS_INFO: the second argument of the load/unload debug services. */
typedef struct _KD_SYMBOLS_INFO {
    PVOID BaseOfDll;
    ULONG_PTR ProcessId;
    ULONG CheckSum;
    ULONG SizeOfImage;
} KD_SYMBOLS_INFO, *PKD_SYMBOLS_INFO;

/* Debug services (int 2Dh, service number in eax; kd-protocol.md 6) */
#define BREAKPOINT_BREAK            0
#define BREAKPOINT_PRINT            1
#define BREAKPOINT_PROMPT           2
#define BREAKPOINT_LOAD_SYMBOLS     3
#define BREAKPOINT_UNLOAD_SYMBOLS   4
#define BREAKPOINT_COMMAND_STRING   5

/* DbgBreakPointWithStatus codes */
#define DBG_STATUS_CONTROL_C        1
#define DBG_STATUS_SYSRQ            2
#define DBG_STATUS_BUGCHECK_FIRST   3
#define DBG_STATUS_BUGCHECK_SECOND  4
#define DBG_STATUS_FATAL            5

#endif
