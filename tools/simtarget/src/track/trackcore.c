/*
 * trackcore.c - Track's record list, its spin lock and the per-class statistics.
 *
 * One list of TRACK_RECORDs (newest first) under one spin lock, as track.md "Records and
 * statistics" describes; trackp.h states the locking rules. Records come from the
 * nonpaged pool with Track's own tag and are never themselves tracked.
 * Not here: the wrappers (trackmemory.c, trackresource.c, trackhandle.c) and the
 * reports (trackreport.c).
 */
#define TRACK_SOURCE_NAME "track\\trackcore.c"
#include "trackp.h"

LIST_ENTRY TrackRecordList;
KSPIN_LOCK TrackLock;
TRACK_MEMORY_STATS TrackMemoryStats;
TRACK_STATS TrackResourceStats;
TRACK_STATS TrackHandleStats;
BOOLEAN TrackInitialized;

static const CHAR *const TrackFunctionNames[TrackFnCount] = {
    "ExAllocatePool",
    "ExAllocatePoolWithTag",
    "ExAllocatePoolWithQuota",
    "ExAllocatePoolWithQuotaTag",
    "ExFreePool",
    "MmAllocateContiguousMemory",
    "MmAllocateNonCachedMemory",
    "MmFreeContiguousMemory",
    "MmFreeNonCachedMemory",
    "IoCreateDevice",
    "IoDeleteDevice",
    "RtlAnsiStringToUnicodeString",
    "RtlFreeUnicodeString",
    "RtlUnicodeStringToAnsiString",
    "RtlFreeAnsiString",
    "MmMapIoSpace",
    "MmUnmapIoSpace",
    "IoAllocateMdl",
    "IoBuildPartialMdl",
    "IoFreeMdl",
    "MmMapLockedPages",
    "MmUnmapLockedPages",
    "ZwClose",
    "IoCreateNotificationEvent",
    "IoCreateSynchronizationEvent",
    "ZwCreateDirectoryObject",
    "ZwCreateFile",
    "ZwOpenKey",
    "ZwOpenSection",
};

/* The one function that legitimately releases what each allocator made; TrackFnCount
   for functions that are not allocators. */
static const TRACK_FUNCTION TrackReleaseOf[TrackFnCount] = {
    [TrackFnExAllocatePool] = TrackFnExFreePool,
    [TrackFnExAllocatePoolWithTag] = TrackFnExFreePool,
    [TrackFnExAllocatePoolWithQuota] = TrackFnExFreePool,
    [TrackFnExAllocatePoolWithQuotaTag] = TrackFnExFreePool,
    [TrackFnExFreePool] = TrackFnCount,
    [TrackFnMmAllocateContiguousMemory] = TrackFnMmFreeContiguousMemory,
    [TrackFnMmAllocateNonCachedMemory] = TrackFnMmFreeNonCachedMemory,
    [TrackFnMmFreeContiguousMemory] = TrackFnCount,
    [TrackFnMmFreeNonCachedMemory] = TrackFnCount,
    [TrackFnIoCreateDevice] = TrackFnIoDeleteDevice,
    [TrackFnIoDeleteDevice] = TrackFnCount,
    [TrackFnRtlAnsiStringToUnicodeString] = TrackFnRtlFreeUnicodeString,
    [TrackFnRtlFreeUnicodeString] = TrackFnCount,
    [TrackFnRtlUnicodeStringToAnsiString] = TrackFnRtlFreeAnsiString,
    [TrackFnRtlFreeAnsiString] = TrackFnCount,
    [TrackFnMmMapIoSpace] = TrackFnMmUnmapIoSpace,
    [TrackFnMmUnmapIoSpace] = TrackFnCount,
    [TrackFnIoAllocateMdl] = TrackFnIoFreeMdl,
    [TrackFnIoBuildPartialMdl] = TrackFnCount,
    [TrackFnIoFreeMdl] = TrackFnCount,
    [TrackFnMmMapLockedPages] = TrackFnMmUnmapLockedPages,
    [TrackFnMmUnmapLockedPages] = TrackFnCount,
    [TrackFnZwClose] = TrackFnCount,
    [TrackFnIoCreateNotificationEvent] = TrackFnZwClose,
    [TrackFnIoCreateSynchronizationEvent] = TrackFnZwClose,
    [TrackFnZwCreateDirectoryObject] = TrackFnZwClose,
    [TrackFnZwCreateFile] = TrackFnZwClose,
    [TrackFnZwOpenKey] = TrackFnZwClose,
    [TrackFnZwOpenSection] = TrackFnZwClose,
};

PCSTR TrackFunctionName(TRACK_FUNCTION Function)
{
    return (ULONG)Function < TrackFnCount ? TrackFunctionNames[Function] : "?";
}

static TRACK_CLASS TrackClassOf(TRACK_FUNCTION Function)
{
    if (Function <= TrackFnMmFreeNonCachedMemory) {
        return TrackClassMemory;
    }
    if (Function <= TrackFnMmUnmapLockedPages) {
        return TrackClassResource;
    }
    return TrackClassHandle;
}

/* Caller holds TrackLock. */
static VOID TrackBumpCalls(TRACK_CLASS Class)
{
    switch (Class) {
    case TrackClassMemory:
        TrackMemoryStats.TotalCalls++;
        break;
    case TrackClassResource:
        TrackResourceStats.TotalCalls++;
        break;
    case TrackClassHandle:
        TrackHandleStats.TotalCalls++;
        break;
    }
}

/* Caller holds TrackLock. Delta is +1 for a new record, -1 for a removed one. */
static VOID TrackAccount(const TRACK_RECORD *Record, LONG Delta)
{
    switch (TrackClassOf(Record->Allocator)) {
    case TrackClassMemory:
        TrackMemoryStats.CurrentCount += (ULONG)Delta;
        if (Record->Flags & TRACK_RECORD_HAS_SIZE) {
            if (Delta > 0) {
                TrackMemoryStats.BytesAllocated += Record->Size;
                if (TrackMemoryStats.BytesAllocated > TrackMemoryStats.PeakBytes) {
                    TrackMemoryStats.PeakBytes = TrackMemoryStats.BytesAllocated;
                }
            } else {
                TrackMemoryStats.BytesAllocated -= Record->Size;
            }
        }
        break;
    case TrackClassResource:
        TrackResourceStats.CurrentCount += (ULONG)Delta;
        break;
    case TrackClassHandle:
        TrackHandleStats.CurrentCount += (ULONG)Delta;
        break;
    }
}

VOID Track_Initialize(VOID)
{
    ASSERT_PASSIVE_LEVEL();
    InitializeListHead(&TrackRecordList);
    KeInitializeSpinLock(&TrackLock);
    RtlZeroMemory(&TrackMemoryStats, sizeof(TrackMemoryStats));
    RtlZeroMemory(&TrackResourceStats, sizeof(TrackResourceStats));
    RtlZeroMemory(&TrackHandleStats, sizeof(TrackHandleStats));
    TrackInitialized = TRUE;
}

PTRACK_RECORD TrackAllocateRecord(VOID)
{
    if (!TrackInitialized) {
        return NULL;
    }
    return (PTRACK_RECORD)ExAllocatePoolWithTag(NonPagedPool, sizeof(TRACK_RECORD),
                                                TRACK_POOL_TAG);
}

VOID TrackFreeRecord(PTRACK_RECORD Record)
{
    if (Record != NULL) {
        ExFreePool(Record);
    }
}

/* Keeps the last TRACK_SOURCE_CHARS characters: the file name is at the end of a path,
   and the front is the part that varies between build machines. */
static VOID TrackCopySource(CHAR *Destination, PCSTR File)
{
    SIZE_T length = 0;
    SIZE_T start;
    SIZE_T i;

    if (File == NULL) {
        File = "";
    }
    while (File[length] != '\0') {
        length++;
    }
    start = length > TRACK_SOURCE_CHARS ? length - TRACK_SOURCE_CHARS : 0;
    for (i = 0; start + i < length; i++) {
        Destination[i] = File[start + i];
    }
    Destination[i] = '\0';
}

VOID TrackInsertRecord(PTRACK_RECORD Record, TRACK_FUNCTION Allocator, ULONG_PTR Value,
                       ULONG_PTR Size, ULONG Flags, PCSTR File, ULONG Line)
{
    KIRQL oldIrql;

    Record->Value = Value;
    Record->Size = Size;
    Record->Allocator = Allocator;
    Record->Line = Line;
    Record->Flags = Flags;
    TrackCopySource(Record->Source, File);

    ASSERT_LEQ_DISPATCH_LEVEL();
    KeAcquireSpinLock(&TrackLock, &oldIrql);
    InsertHeadList(&TrackRecordList, &Record->ListEntry);
    TrackBumpCalls(TrackClassOf(Allocator));
    TrackAccount(Record, 1);
    KeReleaseSpinLock(&TrackLock, oldIrql);
}

VOID TrackRecordResult(PTRACK_RECORD Record, TRACK_FUNCTION Allocator, BOOLEAN Succeeded,
                       ULONG_PTR Value, ULONG_PTR Size, ULONG Flags, PCSTR File, ULONG Line)
{
    if (Record != NULL && Succeeded) {
        TrackInsertRecord(Record, Allocator, Value, Size, Flags, File, Line);
        return;
    }
    TrackFreeRecord(Record);
    TrackCountCall(Allocator);
}

VOID TrackCountCall(TRACK_FUNCTION Function)
{
    KIRQL oldIrql;

    if (!TrackInitialized) {
        return;
    }
    ASSERT_LEQ_DISPATCH_LEVEL();
    KeAcquireSpinLock(&TrackLock, &oldIrql);
    TrackBumpCalls(TrackClassOf(Function));
    KeReleaseSpinLock(&TrackLock, oldIrql);
}

TRACK_LOOKUP TrackRemoveRecord(ULONG_PTR Value, TRACK_FUNCTION Release, PTRACK_RECORD *Removed,
                               PCSTR File, ULONG Line)
{
    KIRQL oldIrql;
    PLIST_ENTRY entry;
    PTRACK_RECORD match = NULL;
    PTRACK_RECORD other = NULL;
    CHAR source[TRACK_SOURCE_CHARS + 1];
    ULONG line = 0;

    *Removed = NULL;
    if (!TrackInitialized) {
        return TrackLookupUnknown;
    }

    ASSERT_LEQ_DISPATCH_LEVEL();
    KeAcquireSpinLock(&TrackLock, &oldIrql);
    TrackBumpCalls(TrackClassOf(Release));
    /* Two records may share a value (a locked-pages mapping of a tracked pool block
       returns the block's address): prefer the one this function releases. */
    for (entry = TrackRecordList.Flink; entry != &TrackRecordList; entry = entry->Flink) {
        PTRACK_RECORD record = CONTAINING_RECORD(entry, TRACK_RECORD, ListEntry);
        if (record->Value != Value) {
            continue;
        }
        if (TrackReleaseOf[record->Allocator] == Release) {
            match = record;
            break;
        }
        if (other == NULL) {
            other = record;
        }
    }
    if (match != NULL) {
        RemoveEntryList(&match->ListEntry);
        TrackAccount(match, -1);
    } else if (other != NULL) {
        RtlCopyMemory(source, other->Source, sizeof(source));
        line = other->Line;
    }
    KeReleaseSpinLock(&TrackLock, oldIrql);

    if (match != NULL) {
        *Removed = match;
        return TrackLookupRemoved;
    }
    if (other == NULL) {
        return TrackLookupUnknown;
    }
    DbgPrint("The object created in %s, line %u cannot be deleted with %s.\n", source,
             (unsigned int)line, TrackFunctionName(Release));
    ASSERT_FAILED_AT("Invalid delete", File, Line);
    (void)File;
    (void)Line;
    return TrackLookupWrongRelease;
}
