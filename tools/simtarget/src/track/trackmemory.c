/*
 * trackmemory.c - the memory class: pool, contiguous and non-cached allocations with
 * guard bytes, their frees, and TRACKVALIDATEALLOCATED.
 *
 * Guard layout (the debugger's !trackvalidate checks the same bytes from outside):
 *
 *   block from the real allocator
 *   +------------------+---------------------------+------------------+
 *   | TrackGuardSize   | caller's Size bytes       | TrackGuardSize   |
 *   | x TrackGuardFill |                           | x TrackGuardFill |
 *   +------------------+---------------------------+------------------+
 *                      ^ Value: what the caller gets and the record holds
 *
 * 16 guard bytes keep the caller's pointer 16-byte aligned, as the x64 pool's are; a
 * page-aligned allocator's pointer therefore moves 16 bytes into its first page.
 * Spec: track.md "Records and statistics", "Entry points", "Report formats".
 * Not here: resources and handles (trackresource.c, trackhandle.c).
 */
#define TRACK_SOURCE_NAME "track\\trackmemory.c"
#include "trackp.h"

#define TRACK_GUARD_SIZE 16
#define TRACK_GUARD_FILL 0xFD

const ULONG TrackGuardSize = TRACK_GUARD_SIZE;
const UCHAR TrackGuardFill = TRACK_GUARD_FILL;

/* A record for a guarded block of Size bytes, or NULL when the call must go to the real
   allocator untouched (Track off, no pool for the record, Size too large to pad). */
static PTRACK_RECORD TrackRecordForBlock(SIZE_T Size)
{
    if (Size > ~(SIZE_T)0 - 2 * TRACK_GUARD_SIZE) {
        return NULL;
    }
    return TrackAllocateRecord();
}

/* Finishes an allocation made with room for the guards: fills them and records the
   caller's part, or gives the record back if the real allocator failed. */
static PVOID TrackGuardAndRecord(PTRACK_RECORD Record, TRACK_FUNCTION Allocator, PVOID Block,
                                 SIZE_T Size, PCSTR File, ULONG Line)
{
    PUCHAR caller;

    if (Block == NULL) {
        TrackFreeRecord(Record);
        TrackCountCall(Allocator);
        return NULL;
    }
    caller = (PUCHAR)Block + TRACK_GUARD_SIZE;
    RtlFillMemory(Block, TRACK_GUARD_SIZE, TRACK_GUARD_FILL);
    RtlFillMemory(caller + Size, TRACK_GUARD_SIZE, TRACK_GUARD_FILL);
    TrackInsertRecord(Record, Allocator, (ULONG_PTR)caller, Size,
                      TRACK_RECORD_HAS_SIZE | TRACK_RECORD_GUARDED, File, Line);
    return caller;
}

/* The address the real allocator returned for a removed record. */
static PVOID TrackBlockOf(const TRACK_RECORD *Record)
{
    ULONG_PTR guard = (Record->Flags & TRACK_RECORD_GUARDED) ? TRACK_GUARD_SIZE : 0;
    return (PVOID)(Record->Value - guard);
}

static SIZE_T TrackBlockSizeOf(const TRACK_RECORD *Record)
{
    ULONG_PTR guards = (Record->Flags & TRACK_RECORD_GUARDED) ? 2 * TRACK_GUARD_SIZE : 0;
    return Record->Size + guards;
}

PVOID Track_ExAllocatePool(POOL_TYPE PoolType, SIZE_T NumberOfBytes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackRecordForBlock(NumberOfBytes);

    if (record == NULL) {
        TrackCountCall(TrackFnExAllocatePool);
        return ExAllocatePool(PoolType, NumberOfBytes);
    }
    return TrackGuardAndRecord(record, TrackFnExAllocatePool,
                               ExAllocatePool(PoolType, NumberOfBytes + 2 * TRACK_GUARD_SIZE),
                               NumberOfBytes, File, Line);
}

PVOID Track_ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag, PCSTR File,
                                  ULONG Line)
{
    PTRACK_RECORD record = TrackRecordForBlock(NumberOfBytes);

    if (record == NULL) {
        TrackCountCall(TrackFnExAllocatePoolWithTag);
        return ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag);
    }
    return TrackGuardAndRecord(
        record, TrackFnExAllocatePoolWithTag,
        ExAllocatePoolWithTag(PoolType, NumberOfBytes + 2 * TRACK_GUARD_SIZE, Tag),
        NumberOfBytes, File, Line);
}

PVOID Track_ExAllocatePoolWithQuota(POOL_TYPE PoolType, SIZE_T NumberOfBytes, PCSTR File,
                                    ULONG Line)
{
    PTRACK_RECORD record = TrackRecordForBlock(NumberOfBytes);

    if (record == NULL) {
        TrackCountCall(TrackFnExAllocatePoolWithQuota);
        return ExAllocatePoolWithQuota(PoolType, NumberOfBytes);
    }
    return TrackGuardAndRecord(
        record, TrackFnExAllocatePoolWithQuota,
        ExAllocatePoolWithQuota(PoolType, NumberOfBytes + 2 * TRACK_GUARD_SIZE), NumberOfBytes,
        File, Line);
}

PVOID Track_ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag,
                                       PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackRecordForBlock(NumberOfBytes);

    if (record == NULL) {
        TrackCountCall(TrackFnExAllocatePoolWithQuotaTag);
        return ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes, Tag);
    }
    return TrackGuardAndRecord(
        record, TrackFnExAllocatePoolWithQuotaTag,
        ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes + 2 * TRACK_GUARD_SIZE, Tag),
        NumberOfBytes, File, Line);
}

PVOID Track_MmAllocateContiguousMemory(SIZE_T NumberOfBytes,
                                       PHYSICAL_ADDRESS HighestAcceptableAddress, PCSTR File,
                                       ULONG Line)
{
    PTRACK_RECORD record = TrackRecordForBlock(NumberOfBytes);

    if (record == NULL) {
        TrackCountCall(TrackFnMmAllocateContiguousMemory);
        return MmAllocateContiguousMemory(NumberOfBytes, HighestAcceptableAddress);
    }
    return TrackGuardAndRecord(
        record, TrackFnMmAllocateContiguousMemory,
        MmAllocateContiguousMemory(NumberOfBytes + 2 * TRACK_GUARD_SIZE, HighestAcceptableAddress),
        NumberOfBytes, File, Line);
}

PVOID Track_MmAllocateNonCachedMemory(SIZE_T NumberOfBytes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackRecordForBlock(NumberOfBytes);

    if (record == NULL) {
        TrackCountCall(TrackFnMmAllocateNonCachedMemory);
        return MmAllocateNonCachedMemory(NumberOfBytes);
    }
    return TrackGuardAndRecord(record, TrackFnMmAllocateNonCachedMemory,
                               MmAllocateNonCachedMemory(NumberOfBytes + 2 * TRACK_GUARD_SIZE),
                               NumberOfBytes, File, Line);
}

VOID Track_ExFreePool(PVOID P, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    switch (TrackRemoveRecord((ULONG_PTR)P, TrackFnExFreePool, &record, File, Line)) {
    case TrackLookupRemoved:
        ExFreePool(TrackBlockOf(record));
        TrackFreeRecord(record);
        break;
    case TrackLookupUnknown:
        ExFreePool(P);
        break;
    case TrackLookupWrongRelease:
        break;
    }
}

VOID Track_MmFreeContiguousMemory(PVOID BaseAddress, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    switch (TrackRemoveRecord((ULONG_PTR)BaseAddress, TrackFnMmFreeContiguousMemory, &record,
                              File, Line)) {
    case TrackLookupRemoved:
        MmFreeContiguousMemory(TrackBlockOf(record));
        TrackFreeRecord(record);
        break;
    case TrackLookupUnknown:
        MmFreeContiguousMemory(BaseAddress);
        break;
    case TrackLookupWrongRelease:
        break;
    }
}

VOID Track_MmFreeNonCachedMemory(PVOID BaseAddress, SIZE_T NumberOfBytes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    switch (TrackRemoveRecord((ULONG_PTR)BaseAddress, TrackFnMmFreeNonCachedMemory, &record,
                              File, Line)) {
    case TrackLookupRemoved:
        /* The real block is the caller's size plus both guards. */
        MmFreeNonCachedMemory(TrackBlockOf(record), TrackBlockSizeOf(record));
        TrackFreeRecord(record);
        break;
    case TrackLookupUnknown:
        MmFreeNonCachedMemory(BaseAddress, NumberOfBytes);
        break;
    case TrackLookupWrongRelease:
        break;
    }
}

static BOOLEAN TrackGuardIntact(const UCHAR *Guard)
{
    ULONG i;

    for (i = 0; i < TRACK_GUARD_SIZE; i++) {
        if (Guard[i] != TRACK_GUARD_FILL) {
            return FALSE;
        }
    }
    return TRUE;
}

VOID Track_ValidateAllocated(VOID)
{
    PLIST_ENTRY entry;
    BOOLEAN corrupt = FALSE;

    ASSERT_PASSIVE_LEVEL();
    if (!TrackInitialized) {
        return;
    }
    /* Blocks may be pageable, so this walk cannot hold the lock and must not run above
       PASSIVE_LEVEL even in a free build, where the assertion above is compiled out. */
    if (KeGetCurrentIrql() != PASSIVE_LEVEL) {
        DbgPrint("Track: TRACKVALIDATEALLOCATED needs PASSIVE_LEVEL; nothing was checked.\n");
        return;
    }
    DbgPrint("Starting to validate allocations.  This could crash if your driver\n");
    DbgPrint("attempts to allocate/free resources while validating.\n");
    for (entry = TrackRecordList.Flink; entry != &TrackRecordList; entry = entry->Flink) {
        const TRACK_RECORD *record = CONTAINING_RECORD(entry, TRACK_RECORD, ListEntry);
        const UCHAR *caller = (const UCHAR *)record->Value;
        BOOLEAN under;
        BOOLEAN over;

        if (!(record->Flags & TRACK_RECORD_GUARDED)) {
            continue;
        }
        under = !TrackGuardIntact(caller - TRACK_GUARD_SIZE);
        over = !TrackGuardIntact(caller + record->Size);
        if (!under && !over) {
            continue;
        }
        corrupt = TRUE;
        DbgPrint("Track Error ****************\n");
        DbgPrint("Memory %s corruption\n",
                 under && over ? "Underwrite and Overwrite" : under ? "Underwrite" : "Overwrite");
        DbgPrint("Allocation point: %s, line %u\n", record->Source, (unsigned int)record->Line);
        DbgPrint("Track Error ****************\n");
    }
    if (corrupt) {
        ASSERT_FAILED("Corrupt Memory");
    }
}
