/*
 * pool.c - the page allocator, the pool and the Mm allocation routines.
 *
 * One nonpaged region (KSIM_LOADER_BLOCK.PoolStart/PoolSize) is handed out in pages.
 * Small pool blocks (up to 255 units of 16 bytes, header included) are packed into
 * pages, each behind a real x64 POOL_HEADER, so that a page is always a complete
 * chain of headers, allocated and free, as !pool expects.  Larger requests take
 * whole pages and are recorded with their tag in PoolBigPageTable
 * (POOL_TRACKER_BIG_PAGES).  Every allocation and free is counted per tag in
 * PoolTrackTable (POOL_TRACKER_TABLE), what !poolused reads.  Contiguous,
 * non-cached and I/O-space mappings are page runs without a pool header.
 */
#include "ki.h"

#define BAD_POOL_CALLER_DOUBLE_FREE 0x07
#define BAD_POOL_CALLER_BAD_ADDRESS 0x46
#define BIG_TABLE_SIZE 512
#define TRACK_TABLE_SIZE 256
#define MAX_POOL_PAGES 8192

static ULONG64 MiPoolStart;
static ULONG MiPoolPages;
static USHORT MiPageRun[MAX_POOL_PAGES];   /* pages in the run that starts here, 0 if none */
static UCHAR MiPageKind[MAX_POOL_PAGES];   /* 0 free, 1 small-pool page, 2 run start, 3 run tail */

static POOL_TRACKER_BIG_PAGES MiBigPages[BIG_TABLE_SIZE];
static POOL_TRACKER_TABLE MiTrackTable[TRACK_TABLE_SIZE];
PVOID PoolBigPageTable = MiBigPages;
SIZE_T PoolBigPageTableSize = BIG_TABLE_SIZE;
PVOID PoolTrackTable = MiTrackTable;
SIZE_T PoolTrackTableSize = TRACK_TABLE_SIZE;

#define PAGE_KIND_FREE 0
#define PAGE_KIND_SMALL 1
#define PAGE_KIND_RUN 2
#define PAGE_KIND_TAIL 3

VOID KiInitializePool(ULONG64 Start, ULONG64 Size)
{
    ULONG i;
    MiPoolStart = Start;
    MiPoolPages = (ULONG)(Size / PAGE_SIZE);
    if (MiPoolPages > MAX_POOL_PAGES)
        MiPoolPages = MAX_POOL_PAGES;
    for (i = 0; i < BIG_TABLE_SIZE; i++)
        MiBigPages[i].Va = POOL_BIG_TABLE_ENTRY_FREE;
}

static LONG MiPageIndex(PVOID Va)
{
    ULONG64 offset = (ULONG64)Va - MiPoolStart;
    if ((ULONG64)Va < MiPoolStart || offset >= (ULONG64)MiPoolPages * PAGE_SIZE)
        return -1;
    return (LONG)(offset / PAGE_SIZE);
}

/* First fit over the page map; the pages come back zeroed. */
PVOID MiAllocatePages(SIZE_T Pages)
{
    ULONG i, run = 0;
    if (Pages == 0 || Pages > 0xFFFF)
        return NULL;
    for (i = 0; i < MiPoolPages; i++) {
        run = MiPageKind[i] == PAGE_KIND_FREE ? run + 1 : 0;
        if (run == Pages) {
            ULONG first = i + 1 - (ULONG)Pages, j;
            for (j = first; j <= i; j++)
                MiPageKind[j] = PAGE_KIND_TAIL;
            MiPageKind[first] = PAGE_KIND_RUN;
            MiPageRun[first] = (USHORT)Pages;
            memset((PVOID)(MiPoolStart + first * PAGE_SIZE), 0, Pages * PAGE_SIZE);
            return (PVOID)(MiPoolStart + first * PAGE_SIZE);
        }
    }
    return NULL;
}

/* Frees the run that starts at Va; returns its size in pages (0: not a run start). */
SIZE_T MiFreePages(PVOID Va)
{
    LONG first = MiPageIndex(Va);
    ULONG j, n;
    if (first < 0 || ((ULONG64)Va & (PAGE_SIZE - 1)) || MiPageKind[first] != PAGE_KIND_RUN)
        return 0;
    n = MiPageRun[first];
    for (j = 0; j < n; j++)
        MiPageKind[first + j] = PAGE_KIND_FREE;
    MiPageRun[first] = 0;
    return n;
}

static POOL_TRACKER_TABLE *ExpTagEntry(ULONG Tag)
{
    ULONG i, h = (Tag * 40543U) % TRACK_TABLE_SIZE;
    for (i = 0; i < TRACK_TABLE_SIZE; i++) {
        POOL_TRACKER_TABLE *e = &MiTrackTable[(h + i) % TRACK_TABLE_SIZE];
        if (e->Key == Tag || e->Key == 0) {
            e->Key = Tag;
            return e;
        }
    }
    return NULL;
}

static VOID ExpTrackAlloc(ULONG Tag, POOL_TYPE Type, SIZE_T Bytes, BOOLEAN Free)
{
    POOL_TRACKER_TABLE *e = ExpTagEntry(Tag);
    if (!e)
        return;
    if (Type & 1) {
        if (Free) { e->PagedFrees++; e->PagedBytes -= Bytes; }
        else { e->PagedAllocs++; e->PagedBytes += Bytes; }
    } else {
        if (Free) { e->NonPagedFrees++; e->NonPagedBytes -= Bytes; }
        else { e->NonPagedAllocs++; e->NonPagedBytes += Bytes; }
    }
}

static PPOOL_HEADER ExpNextHeader(PPOOL_HEADER h)
{
    PPOOL_HEADER next = (PPOOL_HEADER)((PUCHAR)h + ((SIZE_T)h->BlockSize << POOL_BLOCK_SHIFT));
    return ((ULONG64)next & (PAGE_SIZE - 1)) ? next : NULL;
}

static PVOID ExpAllocateSmall(POOL_TYPE Type, ULONG Units, ULONG Tag)
{
    ULONG i;
    for (i = 0; i <= MiPoolPages; i++) {
        PPOOL_HEADER h;
        if (i == MiPoolPages) {
            /* No room in any small page: start a new one, one free block of the
             * remainder after this allocation. */
            PUCHAR page = MiAllocatePages(1);
            LONG index;
            if (!page)
                return NULL;
            index = MiPageIndex(page);
            MiPageKind[index] = PAGE_KIND_SMALL;
            MiPageRun[index] = 0;
            /* The allocation first, the free remainder of the page after it. */
            h = (PPOOL_HEADER)page;
            h->Ulong1 = 0;
            h->BlockSize = Units;
            {
                PPOOL_HEADER rest = (PPOOL_HEADER)(page + (Units << POOL_BLOCK_SHIFT));
                rest->Ulong1 = 0;
                rest->PreviousSize = Units;
                rest->BlockSize = 256 - Units;
                rest->PoolTag = 0;
                rest->ProcessBilled = NULL;
            }
            goto take;
        }
        if (MiPageKind[i] != PAGE_KIND_SMALL)
            continue;
        for (h = (PPOOL_HEADER)(MiPoolStart + i * PAGE_SIZE); h; h = ExpNextHeader(h)) {
            if (h->PoolType == 0 && h->BlockSize >= Units)
                goto split;
        }
        continue;
split:
        if (h->BlockSize > Units) {
            PPOOL_HEADER rest = (PPOOL_HEADER)((PUCHAR)h + (Units << POOL_BLOCK_SHIFT));
            PPOOL_HEADER after;
            rest->Ulong1 = 0;
            rest->PreviousSize = Units;
            rest->BlockSize = h->BlockSize - Units;
            rest->PoolTag = 0;
            rest->ProcessBilled = NULL;
            after = ExpNextHeader(rest);
            if (after)
                after->PreviousSize = rest->BlockSize;
            h->BlockSize = Units;
        }
take:
        h->PoolType = (Type & 0x1F) + 1;
        h->PoolIndex = 0;
        h->PoolTag = Tag;
        h->ProcessBilled = NULL;
        memset(h + 1, 0, ((SIZE_T)Units << POOL_BLOCK_SHIFT) - sizeof(POOL_HEADER));
        return h + 1;
    }
    return NULL;
}

static VOID ExpFreeSmall(PPOOL_HEADER h, LONG PageIndex)
{
    PPOOL_HEADER next, prev;

    if (h->PoolType == 0)
        KeBugCheckEx(BAD_POOL_CALLER, BAD_POOL_CALLER_DOUBLE_FREE, h->Ulong1, (ULONG_PTR)h, (ULONG_PTR)(h + 1));
    h->PoolType = 0;
    /* Merge with the free neighbours so a page stays a chain of maximal blocks. */
    next = ExpNextHeader(h);
    if (next && next->PoolType == 0) {
        h->BlockSize += next->BlockSize;
        next = ExpNextHeader(h);
        if (next)
            next->PreviousSize = h->BlockSize;
    }
    if (h->PreviousSize) {
        prev = (PPOOL_HEADER)((PUCHAR)h - ((SIZE_T)h->PreviousSize << POOL_BLOCK_SHIFT));
        if (prev->PoolType == 0) {
            prev->BlockSize += h->BlockSize;
            h = prev;
            next = ExpNextHeader(h);
            if (next)
                next->PreviousSize = h->BlockSize;
        }
    }
    if (h->PreviousSize == 0 && ExpNextHeader(h) == NULL && h->BlockSize == 0) {
        /* BlockSize wrapped to 0: the whole page (256 units) is free again. */
        MiPageKind[PageIndex] = PAGE_KIND_RUN;
        MiPageRun[PageIndex] = 1;
        MiFreePages(h);
    }
}

static ULONG ExpBigIndex(ULONG64 Va)
{
    return (ULONG)((Va >> 12) * 2654435761U) % BIG_TABLE_SIZE;
}

PVOID NTAPI ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    PVOID p;
    SIZE_T units;

    if (NumberOfBytes == 0)
        NumberOfBytes = 1;
    units = (NumberOfBytes + sizeof(POOL_HEADER) + 15) >> POOL_BLOCK_SHIFT;
    if (units <= POOL_SMALL_MAX_UNITS) {
        p = ExpAllocateSmall(PoolType, (ULONG)units, Tag);
        if (p)
            ExpTrackAlloc(Tag, PoolType, units << POOL_BLOCK_SHIFT, FALSE);
        return p;
    }
    p = MiAllocatePages((NumberOfBytes + PAGE_SIZE - 1) / PAGE_SIZE);
    if (p) {
        ULONG i, start = ExpBigIndex((ULONG64)p);
        for (i = 0; i < BIG_TABLE_SIZE; i++) {
            POOL_TRACKER_BIG_PAGES *e = &MiBigPages[(start + i) % BIG_TABLE_SIZE];
            if (e->Va & POOL_BIG_TABLE_ENTRY_FREE) {
                e->Va = (ULONG64)p;
                e->Key = Tag;
                e->PoolType = PoolType;
                e->NumberOfBytes = NumberOfBytes;
                break;
            }
        }
        ExpTrackAlloc(Tag, PoolType, NumberOfBytes, FALSE);
    }
    return p;
}

PVOID NTAPI ExAllocatePool(POOL_TYPE PoolType, SIZE_T NumberOfBytes)
{
    return ExAllocatePoolWithTag(PoolType, NumberOfBytes, 'enoN');
}

PVOID NTAPI ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag);
}

PVOID NTAPI ExAllocatePoolWithQuota(POOL_TYPE PoolType, SIZE_T NumberOfBytes)
{
    return ExAllocatePoolWithTag(PoolType, NumberOfBytes, 'enoN');
}

PVOID NTAPI ExAllocatePoolWithTagPriority(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag, ULONG Priority)
{
    (void)Priority;
    return ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag);
}

VOID NTAPI ExFreePoolWithTag(PVOID P, ULONG Tag)
{
    LONG index = MiPageIndex(P);
    (void)Tag;
    if (index < 0)
        KeBugCheckEx(BAD_POOL_CALLER, BAD_POOL_CALLER_BAD_ADDRESS, (ULONG_PTR)P, 0, 0);
    if (MiPageKind[index] == PAGE_KIND_SMALL) {
        PPOOL_HEADER h = (PPOOL_HEADER)P - 1;
        ExpTrackAlloc(h->PoolTag, (POOL_TYPE)(h->PoolType ? h->PoolType - 1 : 0),
                      (SIZE_T)h->BlockSize << POOL_BLOCK_SHIFT, TRUE);
        ExpFreeSmall(h, index);
        return;
    }
    if (((ULONG64)P & (PAGE_SIZE - 1)) == 0 && MiPageKind[index] == PAGE_KIND_RUN) {
        ULONG i, start = ExpBigIndex((ULONG64)P);
        for (i = 0; i < BIG_TABLE_SIZE; i++) {
            POOL_TRACKER_BIG_PAGES *e = &MiBigPages[(start + i) % BIG_TABLE_SIZE];
            if (e->Va == (ULONG64)P) {
                ExpTrackAlloc(e->Key, (POOL_TYPE)e->PoolType, e->NumberOfBytes, TRUE);
                e->Va |= POOL_BIG_TABLE_ENTRY_FREE;
                MiFreePages(P);
                return;
            }
        }
    }
    KeBugCheckEx(BAD_POOL_CALLER, BAD_POOL_CALLER_DOUBLE_FREE, 0, (ULONG_PTR)P, 0);
}

VOID NTAPI ExFreePool(PVOID P) { ExFreePoolWithTag(P, 0); }

/* ---- Mm: page runs without pool headers; physical = linear offset in the pool ---- */

PHYSICAL_ADDRESS NTAPI MmGetPhysicalAddress(PVOID BaseAddress)
{
    PHYSICAL_ADDRESS pa;
    pa.QuadPart = MiPageIndex(BaseAddress) < 0 ? 0
        : (LONGLONG)(KiLoaderBlock->PoolPhysicalBase + ((ULONG64)BaseAddress - MiPoolStart));
    return pa;
}

PVOID NTAPI MmAllocateContiguousMemory(SIZE_T NumberOfBytes, PHYSICAL_ADDRESS Highest)
{
    (void)Highest;
    return MiAllocatePages((NumberOfBytes + PAGE_SIZE - 1) / PAGE_SIZE);
}

PVOID NTAPI MmAllocateContiguousMemorySpecifyCache(SIZE_T NumberOfBytes, PHYSICAL_ADDRESS Lowest,
    PHYSICAL_ADDRESS Highest, PHYSICAL_ADDRESS Boundary, MEMORY_CACHING_TYPE CacheType)
{
    (void)Lowest; (void)Boundary; (void)CacheType;
    return MmAllocateContiguousMemory(NumberOfBytes, Highest);
}

VOID NTAPI MmFreeContiguousMemory(PVOID BaseAddress) { MiFreePages(BaseAddress); }

PVOID NTAPI MmAllocateNonCachedMemory(SIZE_T NumberOfBytes)
{
    return MiAllocatePages((NumberOfBytes + PAGE_SIZE - 1) / PAGE_SIZE);
}

VOID NTAPI MmFreeNonCachedMemory(PVOID BaseAddress, SIZE_T NumberOfBytes)
{
    (void)NumberOfBytes;
    MiFreePages(BaseAddress);
}

/* Device memory of this machine is ordinary RAM: a mapping of I/O space is a fresh
 * page run standing for the device's registers. */
PVOID NTAPI MmMapIoSpace(PHYSICAL_ADDRESS PhysicalAddress, SIZE_T NumberOfBytes, MEMORY_CACHING_TYPE CacheType)
{
    PUCHAR p;
    ULONG offset = (ULONG)(PhysicalAddress.QuadPart & (PAGE_SIZE - 1));
    (void)CacheType;
    p = MiAllocatePages((offset + NumberOfBytes + PAGE_SIZE - 1) / PAGE_SIZE);
    return p ? p + offset : NULL;
}

VOID NTAPI MmUnmapIoSpace(PVOID BaseAddress, SIZE_T NumberOfBytes)
{
    (void)NumberOfBytes;
    MiFreePages((PVOID)((ULONG64)BaseAddress & ~(PAGE_SIZE - 1)));
}

BOOLEAN NTAPI MmIsAddressValid(PVOID VirtualAddress)
{
    LONG index = MiPageIndex(VirtualAddress);
    return index < 0 || MiPageKind[index] != PAGE_KIND_FREE;
}
