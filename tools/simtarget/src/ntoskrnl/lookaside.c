/*
 * lookaside.c - interlocked singly linked lists (SLIST_HEADER) and lookaside lists:
 * the nonpaged and paged ones (ExInitialize/DeleteNPagedLookasideList,
 * ExInitialize/DeletePagedLookasideList) and the Vista form (ExInitializeLookasideListEx,
 * ExDeleteLookasideListEx, ExFlushLookasideListEx).
 *
 * On x64 the WDK's wdm.h has the allocate and free routines inline: they pop and push
 * the list head through ExpInterlockedPopEntrySList and ExpInterlockedPushEntrySList,
 * compare ExQueryDepthSList with L.Depth, and call L.Allocate / L.Free (AllocateEx /
 * FreeEx for LOOKASIDE_LIST_EX) on a miss; so those four, and InitializeSListHead,
 * are exported here.  The header is the x64 16-byte one: Depth in bits 0-15 and a
 * sequence in bits 16-63 of the first quadword, and in the second HeaderType (bit 0,
 * set) and the address of the first entry (bits 4-63; entries are 16-byte aligned).
 * One CPU: an operation is atomic once the IRQL is raised above every interrupt.
 *
 * The list depth is fixed at 4 entries (the documented minimum the system keeps; the
 * Depth argument is reserved), not tuned at run time as Windows does.  Initialized
 * lists are linked on one kernel list, as Windows links them for debuggers; deleting
 * unlinks the list and frees every entry it holds with its own free routine, so the
 * pool shows nothing left once a driver deletes its lists.
 *
 * Sources (facts only): the WDK documentation of these routines and of
 * LOOKASIDE_LIST_EX, the layouts of SLIST_HEADER and GENERAL_LOOKASIDE in wdm.h.
 */
#include "ksimrt.h"

#define LOOKASIDE_DEPTH 4
#define LOOKASIDE_MAXIMUM_DEPTH 256
#define SLIST_HEADER_TYPE_16 1ULL
#define POOL_RAISE_IF_ALLOCATION_FAILURE 16
#define EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL 0x00000001
#define EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE 0x00000002
#define STATUS_INVALID_PARAMETER_5 ((NTSTATUS)0xC00000F3L)

typedef struct __declspec(align(16)) _SLIST_ENTRY { struct _SLIST_ENTRY *Next; } SLIST_ENTRY, *PSLIST_ENTRY;
typedef union __declspec(align(16)) _SLIST_HEADER {
    struct { ULONG64 Alignment, Region; };
} SLIST_HEADER, *PSLIST_HEADER;
STATIC_ASSERT(sizeof(SLIST_HEADER) == 16);

typedef PVOID (NTAPI *PALLOCATE_FUNCTION)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag);
typedef VOID (NTAPI *PFREE_FUNCTION)(PVOID Buffer);
typedef PVOID (NTAPI *PALLOCATE_FUNCTION_EX)(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag, PVOID Lookaside);
typedef VOID (NTAPI *PFREE_FUNCTION_EX)(PVOID Buffer, PVOID Lookaside);

/* GENERAL_LOOKASIDE_POOL, the first 0x60 bytes of every kind of lookaside list. */
typedef struct __declspec(align(16)) _GENERAL_LOOKASIDE_POOL {
    SLIST_HEADER ListHead;            /* 0x00 */
    USHORT Depth;                     /* 0x10 */
    USHORT MaximumDepth;
    ULONG TotalAllocates;
    ULONG AllocateMisses;             /* 0x18 */
    ULONG TotalFrees;
    ULONG FreeMisses;                 /* 0x20 */
    POOL_TYPE Type;
    ULONG Tag;                        /* 0x28 */
    ULONG Size;
    PVOID Allocate;                   /* 0x30: PALLOCATE_FUNCTION or _EX */
    PVOID Free;                       /* 0x38: PFREE_FUNCTION or _EX */
    LIST_ENTRY ListEntry;             /* 0x40 */
    ULONG LastTotalAllocates;         /* 0x50 */
    ULONG LastAllocateMisses;
    ULONG Future[2];
} GENERAL_LOOKASIDE_POOL, *PGENERAL_LOOKASIDE_POOL;
STATIC_ASSERT(sizeof(GENERAL_LOOKASIDE_POOL) == 0x60);
STATIC_ASSERT(FIELD_OFFSET(GENERAL_LOOKASIDE_POOL, Allocate) == 0x30);
STATIC_ASSERT(FIELD_OFFSET(GENERAL_LOOKASIDE_POOL, ListEntry) == 0x40);

static LIST_ENTRY ExpLookasideLists = { &ExpLookasideLists, &ExpLookasideLists };

/* ---- Interlocked singly linked lists ---- */

static PSLIST_ENTRY ExpFirst(PSLIST_HEADER Head) { return (PSLIST_ENTRY)(Head->Region & ~0xFULL); }

static VOID ExpSetFirst(PSLIST_HEADER Head, PSLIST_ENTRY Entry, LONG DepthChange)
{
    ULONG64 depth = (Head->Alignment + (ULONG64)(LONG64)DepthChange) & 0xFFFF;
    ULONG64 sequence = ((Head->Alignment >> 16) + 1) & 0xFFFFFFFFFFFFULL;
    Head->Alignment = depth | sequence << 16;
    Head->Region = (ULONG64)Entry | SLIST_HEADER_TYPE_16;
}

VOID NTAPI InitializeSListHead(PSLIST_HEADER SListHead)
{
    SListHead->Alignment = 0;
    SListHead->Region = SLIST_HEADER_TYPE_16;
}

USHORT NTAPI ExQueryDepthSList(PSLIST_HEADER SListHead) { return (USHORT)(SListHead->Alignment & 0xFFFF); }

PSLIST_ENTRY NTAPI ExpInterlockedPushEntrySList(PSLIST_HEADER ListHead, PSLIST_ENTRY ListEntry)
{
    KIRQL old = KfRaiseIrql(HIGH_LEVEL);
    PSLIST_ENTRY first = ExpFirst(ListHead);
    ListEntry->Next = first;
    ExpSetFirst(ListHead, ListEntry, 1);
    KeLowerIrql(old);
    return first;
}

PSLIST_ENTRY NTAPI ExpInterlockedPopEntrySList(PSLIST_HEADER ListHead)
{
    KIRQL old = KfRaiseIrql(HIGH_LEVEL);
    PSLIST_ENTRY first = ExpFirst(ListHead);
    if (first)
        ExpSetFirst(ListHead, first->Next, -1);
    KeLowerIrql(old);
    return first;
}

PSLIST_ENTRY NTAPI ExpInterlockedFlushSList(PSLIST_HEADER ListHead)
{
    KIRQL old = KfRaiseIrql(HIGH_LEVEL);
    PSLIST_ENTRY first = ExpFirst(ListHead);
    if (first)
        ExpSetFirst(ListHead, NULL, -(LONG)ExQueryDepthSList(ListHead));
    KeLowerIrql(old);
    return first;
}

/* ---- Lookaside lists ---- */

DECLSPEC_NORETURN VOID NTAPI ExRaiseStatus(NTSTATUS Status);

/* The default allocate routines: POOL_RAISE_IF_ALLOCATION_FAILURE in the list's type
 * makes a failed allocation raise STATUS_INSUFFICIENT_RESOURCES instead of return NULL. */
static PVOID ExpAllocate(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    PVOID p = ExAllocatePoolWithTag((POOL_TYPE)(PoolType & ~POOL_RAISE_IF_ALLOCATION_FAILURE), NumberOfBytes, Tag);
    if (!p && (PoolType & POOL_RAISE_IF_ALLOCATION_FAILURE))
        ExRaiseStatus(STATUS_INSUFFICIENT_RESOURCES);
    return p;
}

static PVOID NTAPI ExpDefaultAllocateEx(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag, PVOID Lookaside)
{
    (void)Lookaside;
    return ExpAllocate(PoolType, NumberOfBytes, Tag);
}

static VOID NTAPI ExpDefaultFreeEx(PVOID Buffer, PVOID Lookaside)
{
    (void)Lookaside;
    ExFreePool(Buffer);
}

static PVOID NTAPI ExpDefaultAllocate(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return ExpAllocate(PoolType, NumberOfBytes, Tag);
}

static VOID NTAPI ExpDefaultFree(PVOID Buffer) { ExFreePool(Buffer); }

static VOID ExpInitializeLookaside(PGENERAL_LOOKASIDE_POOL L, PVOID Allocate, PVOID Free, POOL_TYPE Type,
                                   SIZE_T Size, ULONG Tag)
{
    KIRQL old;
    memset(L, 0, sizeof(*L));
    InitializeSListHead(&L->ListHead);
    L->Depth = LOOKASIDE_DEPTH;
    L->MaximumDepth = LOOKASIDE_MAXIMUM_DEPTH;
    L->Type = Type;
    L->Tag = Tag;
    L->Size = (ULONG)(Size < sizeof(SLIST_ENTRY) ? sizeof(SLIST_ENTRY) : Size);
    L->Allocate = Allocate;
    L->Free = Free;
    old = KfRaiseIrql(HIGH_LEVEL);
    InsertTailList(&ExpLookasideLists, &L->ListEntry);
    KeLowerIrql(old);
}

/* Unlinks the list and hands every entry it holds to its free routine. */
static VOID ExpDeleteLookaside(PGENERAL_LOOKASIDE_POOL L, BOOLEAN Ex)
{
    PSLIST_ENTRY entry, next;
    KIRQL old = KfRaiseIrql(HIGH_LEVEL);
    RemoveEntryList(&L->ListEntry);
    InitializeListHead(&L->ListEntry);
    KeLowerIrql(old);
    for (entry = ExpInterlockedFlushSList(&L->ListHead); entry; entry = next) {
        next = entry->Next;
        if (Ex)
            ((PFREE_FUNCTION_EX)L->Free)(entry, L);
        else
            ((PFREE_FUNCTION)L->Free)(entry);
    }
}

VOID NTAPI ExInitializeNPagedLookasideList(PVOID Lookaside, PALLOCATE_FUNCTION Allocate, PFREE_FUNCTION Free,
                                           ULONG Flags, SIZE_T Size, ULONG Tag, USHORT Depth)
{
    (void)Depth;
    /* Flags may carry POOL_NX_ALLOCATION and POOL_RAISE_IF_ALLOCATION_FAILURE, as pool types. */
    ExpInitializeLookaside(Lookaside, Allocate ? (PVOID)Allocate : (PVOID)ExpDefaultAllocate,
                           Free ? (PVOID)Free : (PVOID)ExpDefaultFree, (POOL_TYPE)(NonPagedPool | Flags), Size, Tag);
}

VOID NTAPI ExInitializePagedLookasideList(PVOID Lookaside, PALLOCATE_FUNCTION Allocate, PFREE_FUNCTION Free,
                                          ULONG Flags, SIZE_T Size, ULONG Tag, USHORT Depth)
{
    (void)Depth;
    ExpInitializeLookaside(Lookaside, Allocate ? (PVOID)Allocate : (PVOID)ExpDefaultAllocate,
                           Free ? (PVOID)Free : (PVOID)ExpDefaultFree, (POOL_TYPE)(PagedPool | Flags), Size, Tag);
}

VOID NTAPI ExDeleteNPagedLookasideList(PVOID Lookaside) { ExpDeleteLookaside(Lookaside, FALSE); }
VOID NTAPI ExDeletePagedLookasideList(PVOID Lookaside) { ExpDeleteLookaside(Lookaside, FALSE); }

/* Flags: at most one of RAISE_ON_FAIL (the default allocate routine raises on failure)
 * and FAIL_NO_RAISE; anything else is STATUS_INVALID_PARAMETER_5, as documented. */
NTSTATUS NTAPI ExInitializeLookasideListEx(PVOID Lookaside, PALLOCATE_FUNCTION_EX Allocate, PFREE_FUNCTION_EX Free,
                                           POOL_TYPE PoolType, ULONG Flags, SIZE_T Size, ULONG Tag, USHORT Depth)
{
    ULONG known = EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL | EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE;
    (void)Depth;
    if ((Flags & ~known) || Flags == known)
        return STATUS_INVALID_PARAMETER_5;
    if (Flags & EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL)
        PoolType = (POOL_TYPE)(PoolType | POOL_RAISE_IF_ALLOCATION_FAILURE);
    ExpInitializeLookaside(Lookaside, Allocate ? (PVOID)Allocate : (PVOID)ExpDefaultAllocateEx,
                           Free ? (PVOID)Free : (PVOID)ExpDefaultFreeEx, PoolType, Size, Tag);
    return STATUS_SUCCESS;
}

VOID NTAPI ExDeleteLookasideListEx(PVOID Lookaside) { ExpDeleteLookaside(Lookaside, TRUE); }

/* Frees every entry the list holds; the list stays usable. */
VOID NTAPI ExFlushLookasideListEx(PVOID Lookaside)
{
    PGENERAL_LOOKASIDE_POOL L = Lookaside;
    PSLIST_ENTRY entry, next;
    for (entry = ExpInterlockedFlushSList(&L->ListHead); entry; entry = next) {
        next = entry->Next;
        ((PFREE_FUNCTION_EX)L->Free)(entry, L);
    }
}
