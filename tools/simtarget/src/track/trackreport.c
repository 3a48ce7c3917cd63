/*
 * trackreport.c - TRACKSTATS, TRACKDUMPALLOCATED and TRACKCLOSE with its leak report.
 *
 * Texts follow track.md "Report formats" byte for byte where it gives them (the leak
 * report); the statistics and dump texts are this implementation's, documented in the
 * README so that the debugger's !trackstats and !trackdump can reproduce them.
 * Not here: validation of guard bytes (trackmemory.c).
 */
#define TRACK_SOURCE_NAME "track\\trackreport.c"
#include "trackp.h"

static const CHAR TrackBanner[] = "****************************************\n";

PCSTR TrackFormatDecimal(CHAR Buffer[TRACK_NUMBER_CHARS], ULONG64 Value)
{
    CHAR *p = Buffer + TRACK_NUMBER_CHARS - 1;

    *p = '\0';
    do {
        *--p = (CHAR)('0' + (Value % 10));
        Value /= 10;
    } while (Value != 0);
    return p;
}

PCSTR TrackFormatAddress(CHAR Buffer[TRACK_NUMBER_CHARS], ULONG64 Value)
{
    static const CHAR digits[] = "0123456789abcdef";
    int shift;
    int i = 0;

    for (shift = 60; shift >= 0; shift -= 4) {
        Buffer[i++] = digits[(Value >> shift) & 0xF];
        if (shift == 32) {
            Buffer[i++] = '`';
        }
    }
    Buffer[i] = '\0';
    return Buffer;
}

VOID TrackPrintRecord(const TRACK_RECORD *Record, BOOLEAN WithValue)
{
    CHAR number[TRACK_NUMBER_CHARS];

    DbgPrint("AllocatorFn : %s\n", TrackFunctionName(Record->Allocator));
    DbgPrint("   Source   : %s\n", Record->Source);
    DbgPrint("   Line     : %u\n", (unsigned int)Record->Line);
    if (Record->Flags & TRACK_RECORD_HAS_SIZE) {
        DbgPrint("   Size     : %s\n", TrackFormatDecimal(number, Record->Size));
    }
    if (WithValue) {
        DbgPrint("   Value    : %s\n", TrackFormatAddress(number, Record->Value));
    }
}

VOID Track_Stats(VOID)
{
    KIRQL oldIrql;
    TRACK_MEMORY_STATS memory;
    TRACK_STATS resource;
    TRACK_STATS handle;
    CHAR number[TRACK_NUMBER_CHARS];

    ASSERT_LEQ_DISPATCH_LEVEL();
    if (!TrackInitialized) {
        return;
    }
    KeAcquireSpinLock(&TrackLock, &oldIrql);
    memory = TrackMemoryStats;
    resource = TrackResourceStats;
    handle = TrackHandleStats;
    KeReleaseSpinLock(&TrackLock, oldIrql);

    DbgPrint("%s", TrackBanner);
    DbgPrint("Track Statistics:\n");
    DbgPrint("%s", TrackBanner);
    DbgPrint("Bytes Allocated : %s\n", TrackFormatDecimal(number, memory.BytesAllocated));
    DbgPrint("Peak Bytes      : %s\n", TrackFormatDecimal(number, memory.PeakBytes));
    DbgPrint("Memory          : %u calls, %u live\n", (unsigned int)memory.TotalCalls,
             (unsigned int)memory.CurrentCount);
    DbgPrint("Resource        : %u calls, %u live\n", (unsigned int)resource.TotalCalls,
             (unsigned int)resource.CurrentCount);
    DbgPrint("Handle          : %u calls, %u live\n", (unsigned int)handle.TotalCalls,
             (unsigned int)handle.CurrentCount);
}

VOID Track_DumpAllocated(VOID)
{
    KIRQL oldIrql;
    PLIST_ENTRY entry;
    ULONG count = 0;

    ASSERT_LEQ_DISPATCH_LEVEL();
    if (!TrackInitialized) {
        return;
    }
    DbgPrint("%s", TrackBanner);
    DbgPrint("Track Live Allocations/Resources:\n");
    DbgPrint("%s", TrackBanner);
    /* Records are Track's own nonpaged memory and printing releases nothing, so the
       walk may hold the lock (trackp.h rule 2). */
    KeAcquireSpinLock(&TrackLock, &oldIrql);
    for (entry = TrackRecordList.Flink; entry != &TrackRecordList; entry = entry->Flink) {
        TrackPrintRecord(CONTAINING_RECORD(entry, TRACK_RECORD, ListEntry), TRUE);
        count++;
    }
    KeReleaseSpinLock(&TrackLock, oldIrql);
    DbgPrint("Live records: %u\n", (unsigned int)count);
}

VOID Track_Close(VOID)
{
    KIRQL oldIrql;
    LIST_ENTRY leaks;
    PLIST_ENTRY entry;

    ASSERT_LEQ_DISPATCH_LEVEL();
    if (!TrackInitialized) {
        return;
    }
    /* Detach the whole list under the lock; report and free outside it. */
    InitializeListHead(&leaks);
    KeAcquireSpinLock(&TrackLock, &oldIrql);
    if (TrackRecordList.Flink != &TrackRecordList) {
        leaks.Flink = TrackRecordList.Flink;
        leaks.Blink = TrackRecordList.Blink;
        leaks.Flink->Blink = &leaks;
        leaks.Blink->Flink = &leaks;
        InitializeListHead(&TrackRecordList);
    }
    TrackInitialized = FALSE;
    KeReleaseSpinLock(&TrackLock, oldIrql);

    if (leaks.Flink != &leaks) {
        DbgPrint("%s", TrackBanner);
        DbgPrint("Track Reports Allocation/Resource Leaks:\n");
        DbgPrint("%s", TrackBanner);
        for (entry = leaks.Flink; entry != &leaks; entry = entry->Flink) {
            TrackPrintRecord(CONTAINING_RECORD(entry, TRACK_RECORD, ListEntry), FALSE);
        }
    }
    while (leaks.Flink != &leaks) {
        entry = leaks.Flink;
        RemoveEntryList(entry);
        TrackFreeRecord(CONTAINING_RECORD(entry, TRACK_RECORD, ListEntry));
    }
}
