/*
 * trackp.h - Track's internal interface: the record list, its lock and the reports.
 *
 * Rule 1: the record list, the statistics and TrackInitialized change only under
 *         TrackLock.
 * Rule 2: nothing that may release memory, touch pageable memory or prompt the user
 *         (real release functions, record frees, RtlAssert) runs while TrackLock is held:
 *         the lock raises the IRQL to DISPATCH_LEVEL (track.md, the original's lesson).
 * Rule 3: a record is allocated before the real allocation, so that an object is either
 *         recorded with its guards or returned to the caller untouched, never half-done.
 */
#ifndef TRACKP_H
#define TRACKP_H

#include "ntdecl.h"
#include "diag.h"
#include "track.h"

/* 'Trck' in memory: Track's own records in the pool. */
#define TRACK_POOL_TAG 0x6B637254UL

typedef enum _TRACK_CLASS {
    TrackClassMemory,
    TrackClassResource,
    TrackClassHandle
} TRACK_CLASS;

typedef enum _TRACK_LOOKUP {
    TrackLookupUnknown,     /* Track never saw the value: release it untouched */
    TrackLookupRemoved,     /* the record was unlinked: release, then free the record */
    TrackLookupWrongRelease /* reported and asserted: the real release must be skipped */
} TRACK_LOOKUP;

PCSTR TrackFunctionName(TRACK_FUNCTION Function);

/* A fresh record from the pool, or NULL when Track is off or the pool is exhausted. */
PTRACK_RECORD TrackAllocateRecord(VOID);
VOID TrackFreeRecord(PTRACK_RECORD Record);

/* Fills Record, links it at the head of TrackRecordList and counts the call. */
VOID TrackInsertRecord(PTRACK_RECORD Record, TRACK_FUNCTION Allocator, ULONG_PTR Value,
                       ULONG_PTR Size, ULONG Flags, PCSTR File, ULONG Line);

/* Ends an allocating call made after TrackAllocateRecord: records Value when the call
   Succeeded, otherwise gives the record back and only counts the call. Record may be
   NULL (Track off or no pool), in which case the object stays untracked. */
VOID TrackRecordResult(PTRACK_RECORD Record, TRACK_FUNCTION Allocator, BOOLEAN Succeeded,
                       ULONG_PTR Value, ULONG_PTR Size, ULONG Flags, PCSTR File, ULONG Line);

/* Counts a call that created no record (a failed allocation, IoBuildPartialMdl). */
VOID TrackCountCall(TRACK_FUNCTION Function);

/* Finds the record of Value made by an allocator that Release frees, counts the call and
   unlinks it (*Removed). A record of Value from another allocator is reported as a wrong
   release, with the releasing call site File/Line in the assertion. */
TRACK_LOOKUP TrackRemoveRecord(ULONG_PTR Value, TRACK_FUNCTION Release, PTRACK_RECORD *Removed,
                               PCSTR File, ULONG Line);

/* "AllocatorFn / Source / Line / Size" lines of the leak report and the dump. */
VOID TrackPrintRecord(const TRACK_RECORD *Record, BOOLEAN WithValue);

/* Decimal and WinDbg-style hex ("fffff800`00001000") without relying on the kernel's
   DbgPrint supporting 64-bit conversions. */
#define TRACK_NUMBER_CHARS 24
PCSTR TrackFormatDecimal(CHAR Buffer[TRACK_NUMBER_CHARS], ULONG64 Value);
PCSTR TrackFormatAddress(CHAR Buffer[TRACK_NUMBER_CHARS], ULONG64 Value);

extern KSPIN_LOCK TrackLock;

#endif /* TRACKP_H */
