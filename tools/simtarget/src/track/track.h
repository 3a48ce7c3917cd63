/*
 * track.h - Track, the resource-tracking library (spec: track.md).
 *
 * A driver opts in per call by writing Track<Function>(...) instead of <Function>(...):
 * the macro adds the call site, the wrapper makes the real call first and then records
 * the result. What this header defines is also the debugger's contract: the record and
 * statistics structures below are fixed-layout, and the globals keep these names so that
 * !trackstats, !trackdump and !trackvalidate can find them through the PDB:
 *
 *   TrackRecordList     LIST_ENTRY head; TRACK_RECORD.ListEntry links, newest first
 *   TrackMemoryStats    TRACK_MEMORY_STATS
 *   TrackResourceStats  TRACK_STATS
 *   TrackHandleStats    TRACK_STATS
 *   TrackGuardSize      ULONG, guard bytes before and after each memory block (16)
 *   TrackGuardFill      UCHAR, the value every guard byte holds (0xFD)
 *   TrackInitialized    BOOLEAN, TRUE between TRACKINITIALIZE and TRACKCLOSE
 *
 * A memory record's Value is the pointer the caller got; the block the real allocator
 * returned starts TrackGuardSize bytes earlier and ends TrackGuardSize bytes after
 * Value + Size. Source holds the call site's file name, cut to its last 40 characters.
 *
 * Not here: redirection by patching imports (the macros do it), tracking of calls made
 * without the Track prefix.
 */
#ifndef TRACK_H
#define TRACK_H

#include "ntdecl.h"

/* Which kernel function made (or is asked to release) an object. Stable values: the
   debugger prints an enumerator's name without the "TrackFn" prefix. */
typedef enum _TRACK_FUNCTION {
    /* memory */
    TrackFnExAllocatePool = 0,
    TrackFnExAllocatePoolWithTag = 1,
    TrackFnExAllocatePoolWithQuota = 2,
    TrackFnExAllocatePoolWithQuotaTag = 3,
    TrackFnExFreePool = 4,
    TrackFnMmAllocateContiguousMemory = 5,
    TrackFnMmAllocateNonCachedMemory = 6,
    TrackFnMmFreeContiguousMemory = 7,
    TrackFnMmFreeNonCachedMemory = 8,
    /* general resources */
    TrackFnIoCreateDevice = 9,
    TrackFnIoDeleteDevice = 10,
    TrackFnRtlAnsiStringToUnicodeString = 11,
    TrackFnRtlFreeUnicodeString = 12,
    TrackFnRtlUnicodeStringToAnsiString = 13,
    TrackFnRtlFreeAnsiString = 14,
    TrackFnMmMapIoSpace = 15,
    TrackFnMmUnmapIoSpace = 16,
    TrackFnIoAllocateMdl = 17,
    TrackFnIoBuildPartialMdl = 18,
    TrackFnIoFreeMdl = 19,
    TrackFnMmMapLockedPages = 20,
    TrackFnMmUnmapLockedPages = 21,
    /* handles */
    TrackFnZwClose = 22,
    TrackFnIoCreateNotificationEvent = 23,
    TrackFnIoCreateSynchronizationEvent = 24,
    TrackFnZwCreateDirectoryObject = 25,
    TrackFnZwCreateFile = 26,
    TrackFnZwOpenKey = 27,
    TrackFnZwOpenSection = 28,
    TrackFnCount = 29
} TRACK_FUNCTION;

#define TRACK_SOURCE_CHARS 40

/* TRACK_RECORD.Flags */
#define TRACK_RECORD_HAS_SIZE 0x1 /* Size is meaningful (reports print it) */
#define TRACK_RECORD_GUARDED 0x2  /* guard bytes surround [Value, Value + Size) */

typedef struct _TRACK_RECORD {
    LIST_ENTRY ListEntry;                /* 0x00 */
    ULONG_PTR Value;                     /* 0x10 pointer or handle the caller got */
    ULONG_PTR Size;                      /* 0x18 bytes the caller asked for, or 0 */
    TRACK_FUNCTION Allocator;            /* 0x20 */
    ULONG Line;                          /* 0x24 */
    ULONG Flags;                         /* 0x28 TRACK_RECORD_* */
    CHAR Source[TRACK_SOURCE_CHARS + 1]; /* 0x2C NUL-terminated */
} TRACK_RECORD, *PTRACK_RECORD;

/* Per class: TotalCalls counts every call through a wrapper of the class (allocations,
   failed ones included, and releases); CurrentCount the live records. */
typedef struct _TRACK_STATS {
    ULONG TotalCalls;   /* 0x00 */
    ULONG CurrentCount; /* 0x04 */
} TRACK_STATS;

typedef struct _TRACK_MEMORY_STATS {
    ULONG TotalCalls;      /* 0x00 */
    ULONG CurrentCount;    /* 0x04 */
    ULONG64 BytesAllocated; /* 0x08 sum of live records' Size (guards not counted) */
    ULONG64 PeakBytes;     /* 0x10 highest BytesAllocated seen */
} TRACK_MEMORY_STATS;

_Static_assert(__builtin_offsetof(TRACK_RECORD, Value) == 0x10, "TRACK_RECORD");
_Static_assert(__builtin_offsetof(TRACK_RECORD, Size) == 0x18, "TRACK_RECORD");
_Static_assert(__builtin_offsetof(TRACK_RECORD, Allocator) == 0x20, "TRACK_RECORD");
_Static_assert(__builtin_offsetof(TRACK_RECORD, Line) == 0x24, "TRACK_RECORD");
_Static_assert(__builtin_offsetof(TRACK_RECORD, Flags) == 0x28, "TRACK_RECORD");
_Static_assert(__builtin_offsetof(TRACK_RECORD, Source) == 0x2C, "TRACK_RECORD");
_Static_assert(sizeof(TRACK_RECORD) == 0x58, "TRACK_RECORD");
_Static_assert(sizeof(TRACK_FUNCTION) == 4, "TRACK_FUNCTION");
_Static_assert(sizeof(TRACK_STATS) == 0x08, "TRACK_STATS");
_Static_assert(__builtin_offsetof(TRACK_MEMORY_STATS, BytesAllocated) == 0x08, "TRACK_MEMORY_STATS");
_Static_assert(sizeof(TRACK_MEMORY_STATS) == 0x18, "TRACK_MEMORY_STATS");

extern LIST_ENTRY TrackRecordList;
extern TRACK_MEMORY_STATS TrackMemoryStats;
extern TRACK_STATS TrackResourceStats;
extern TRACK_STATS TrackHandleStats;
extern const ULONG TrackGuardSize;
extern const UCHAR TrackGuardFill;
extern BOOLEAN TrackInitialized;

/* Entry points (track.md, "Entry points"). */
VOID Track_Initialize(VOID);
VOID Track_Stats(VOID);
VOID Track_DumpAllocated(VOID);
VOID Track_ValidateAllocated(VOID);
VOID Track_Close(VOID);

#define TRACKINITIALIZE Track_Initialize()
#define TRACKSTATS Track_Stats()
#define TRACKDUMPALLOCATED Track_DumpAllocated()
#define TRACKVALIDATEALLOCATED Track_ValidateAllocated()
#define TRACKCLOSE Track_Close()

#ifndef TRACK_SOURCE_NAME
#define TRACK_SOURCE_NAME __FILE__
#endif
#define TRACK_SITE TRACK_SOURCE_NAME, __LINE__

/* Memory. */
PVOID Track_ExAllocatePool(POOL_TYPE PoolType, SIZE_T NumberOfBytes, PCSTR File, ULONG Line);
PVOID Track_ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag, PCSTR File,
                                  ULONG Line);
PVOID Track_ExAllocatePoolWithQuota(POOL_TYPE PoolType, SIZE_T NumberOfBytes, PCSTR File,
                                    ULONG Line);
PVOID Track_ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                       PCSTR File, ULONG Line);
VOID Track_ExFreePool(PVOID P, PCSTR File, ULONG Line);
PVOID Track_MmAllocateContiguousMemory(SIZE_T NumberOfBytes,
                                       PHYSICAL_ADDRESS HighestAcceptableAddress, PCSTR File,
                                       ULONG Line);
PVOID Track_MmAllocateNonCachedMemory(SIZE_T NumberOfBytes, PCSTR File, ULONG Line);
VOID Track_MmFreeContiguousMemory(PVOID BaseAddress, PCSTR File, ULONG Line);
VOID Track_MmFreeNonCachedMemory(PVOID BaseAddress, SIZE_T NumberOfBytes, PCSTR File, ULONG Line);

#define TrackExAllocatePool(t, n) Track_ExAllocatePool((t), (n), TRACK_SITE)
#define TrackExAllocatePoolWithTag(t, n, g) Track_ExAllocatePoolWithTag((t), (n), (g), TRACK_SITE)
#define TrackExAllocatePoolWithQuota(t, n) Track_ExAllocatePoolWithQuota((t), (n), TRACK_SITE)
#define TrackExAllocatePoolWithQuotaTag(t, n, g) \
    Track_ExAllocatePoolWithQuotaTag((t), (n), (g), TRACK_SITE)
#define TrackExFreePool(p) Track_ExFreePool((p), TRACK_SITE)
#define TrackMmAllocateContiguousMemory(n, h) Track_MmAllocateContiguousMemory((n), (h), TRACK_SITE)
#define TrackMmAllocateNonCachedMemory(n) Track_MmAllocateNonCachedMemory((n), TRACK_SITE)
#define TrackMmFreeContiguousMemory(p) Track_MmFreeContiguousMemory((p), TRACK_SITE)
#define TrackMmFreeNonCachedMemory(p, n) Track_MmFreeNonCachedMemory((p), (n), TRACK_SITE)

/* General resources. */
NTSTATUS Track_IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
                              PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType,
                              ULONG DeviceCharacteristics, BOOLEAN Exclusive,
                              PDEVICE_OBJECT *DeviceObject, PCSTR File, ULONG Line);
VOID Track_IoDeleteDevice(PDEVICE_OBJECT DeviceObject, PCSTR File, ULONG Line);
NTSTATUS Track_RtlAnsiStringToUnicodeString(PUNICODE_STRING DestinationString,
                                            PCANSI_STRING SourceString,
                                            BOOLEAN AllocateDestinationString, PCSTR File,
                                            ULONG Line);
VOID Track_RtlFreeUnicodeString(PUNICODE_STRING UnicodeString, PCSTR File, ULONG Line);
NTSTATUS Track_RtlUnicodeStringToAnsiString(PANSI_STRING DestinationString,
                                            PCUNICODE_STRING SourceString,
                                            BOOLEAN AllocateDestinationString, PCSTR File,
                                            ULONG Line);
VOID Track_RtlFreeAnsiString(PANSI_STRING AnsiString, PCSTR File, ULONG Line);
PVOID Track_MmMapIoSpace(PHYSICAL_ADDRESS PhysicalAddress, SIZE_T NumberOfBytes,
                         MEMORY_CACHING_TYPE CacheType, PCSTR File, ULONG Line);
VOID Track_MmUnmapIoSpace(PVOID BaseAddress, SIZE_T NumberOfBytes, PCSTR File, ULONG Line);
PMDL Track_IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                         BOOLEAN ChargeQuota, PIRP Irp, PCSTR File, ULONG Line);
VOID Track_IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length,
                             PCSTR File, ULONG Line);
VOID Track_IoFreeMdl(PMDL Mdl, PCSTR File, ULONG Line);
PVOID Track_MmMapLockedPages(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode, PCSTR File,
                             ULONG Line);
VOID Track_MmUnmapLockedPages(PVOID BaseAddress, PMDL MemoryDescriptorList, PCSTR File,
                              ULONG Line);

#define TrackIoCreateDevice(d, n, name, t, c, x, o) \
    Track_IoCreateDevice((d), (n), (name), (t), (c), (x), (o), TRACK_SITE)
#define TrackIoDeleteDevice(d) Track_IoDeleteDevice((d), TRACK_SITE)
#define TrackRtlAnsiStringToUnicodeString(d, s, a) \
    Track_RtlAnsiStringToUnicodeString((d), (s), (a), TRACK_SITE)
#define TrackRtlFreeUnicodeString(s) Track_RtlFreeUnicodeString((s), TRACK_SITE)
#define TrackRtlUnicodeStringToAnsiString(d, s, a) \
    Track_RtlUnicodeStringToAnsiString((d), (s), (a), TRACK_SITE)
#define TrackRtlFreeAnsiString(s) Track_RtlFreeAnsiString((s), TRACK_SITE)
#define TrackMmMapIoSpace(p, n, c) Track_MmMapIoSpace((p), (n), (c), TRACK_SITE)
#define TrackMmUnmapIoSpace(b, n) Track_MmUnmapIoSpace((b), (n), TRACK_SITE)
#define TrackIoAllocateMdl(v, n, s, q, i) Track_IoAllocateMdl((v), (n), (s), (q), (i), TRACK_SITE)
#define TrackIoBuildPartialMdl(s, t, v, n) Track_IoBuildPartialMdl((s), (t), (v), (n), TRACK_SITE)
#define TrackIoFreeMdl(m) Track_IoFreeMdl((m), TRACK_SITE)
#define TrackMmMapLockedPages(m, a) Track_MmMapLockedPages((m), (a), TRACK_SITE)
#define TrackMmUnmapLockedPages(b, m) Track_MmUnmapLockedPages((b), (m), TRACK_SITE)

/* Handles. */
NTSTATUS Track_ZwClose(HANDLE Handle, PCSTR File, ULONG Line);
PKEVENT Track_IoCreateNotificationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle,
                                        PCSTR File, ULONG Line);
PKEVENT Track_IoCreateSynchronizationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle,
                                           PCSTR File, ULONG Line);
NTSTATUS Track_ZwCreateDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
                                       POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File,
                                       ULONG Line);
NTSTATUS Track_ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                            POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
                            PLARGE_INTEGER AllocationSize, ULONG FileAttributes,
                            ULONG ShareAccess, ULONG CreateDisposition, ULONG CreateOptions,
                            PVOID EaBuffer, ULONG EaLength, PCSTR File, ULONG Line);
NTSTATUS Track_ZwOpenKey(PHANDLE KeyHandle, ACCESS_MASK DesiredAccess,
                         POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File, ULONG Line);
NTSTATUS Track_ZwOpenSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess,
                             POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File, ULONG Line);

#define TrackZwClose(h) Track_ZwClose((h), TRACK_SITE)
#define TrackIoCreateNotificationEvent(n, h) Track_IoCreateNotificationEvent((n), (h), TRACK_SITE)
#define TrackIoCreateSynchronizationEvent(n, h) \
    Track_IoCreateSynchronizationEvent((n), (h), TRACK_SITE)
#define TrackZwCreateDirectoryObject(h, a, o) Track_ZwCreateDirectoryObject((h), (a), (o), TRACK_SITE)
#define TrackZwCreateFile(h, a, o, s, n, fa, sh, d, co, ea, el) \
    Track_ZwCreateFile((h), (a), (o), (s), (n), (fa), (sh), (d), (co), (ea), (el), TRACK_SITE)
#define TrackZwOpenKey(h, a, o) Track_ZwOpenKey((h), (a), (o), TRACK_SITE)
#define TrackZwOpenSection(h, a, o) Track_ZwOpenSection((h), (a), (o), TRACK_SITE)

#endif /* TRACK_H */
