/*
 * mm.c - the PFN database: one MMPFN per page of physical RAM, and the page lists.
 *
 * MmPfnDatabase is an array indexed by page frame number, in Windows 7 x64's layout
 * (ki.h); only the entries of pages that exist are backed by memory, as in Windows,
 * and MmPhysicalMemoryBlock says which runs of pages exist.  The loader maps the
 * array and fills every entry from the page tables at CR3, as Windows' boot-time memory
 * manager does: a page a present leaf maps is ActiveAndValid, with PteAddress the
 * address its PTE has in Windows 7's self-map (MiGetPteAddress; for a 2 MB page, its
 * PDE's) and PteFrame the page of the table that holds that entry; table pages are
 * entered the same way; the unused pages of the page-table area are zeroed.  That part
 * is the loader's because this kernel cannot see its page tables (they have no virtual
 * address).  The kernel links the pages that are not in use into MmZeroedPageListHead,
 * MmFreePageListHead and the other lists, and keeps the database from then on: the
 * pages of an unloaded driver go to the free list.
 *
 * The address ranges of the last MI_UNLOADED_IMAGES unloaded drivers are kept, as
 * Windows keeps MmUnloadedDrivers, so that a fault there can be told apart from any
 * other bad address: it is a driver that unloaded with work still pending (ke.c).
 */
#include "ki.h"

PMMPFN MmPfnDatabase;
PFN_NUMBER MmLowestPhysicalPage;
PFN_NUMBER MmHighestPhysicalPage;
PFN_NUMBER MmNumberOfPhysicalPages;
PFN_NUMBER MmAvailablePages;
PFN_NUMBER MmResidentAvailablePages;
PPHYSICAL_MEMORY_DESCRIPTOR MmPhysicalMemoryBlock;

MMPFNLIST MmZeroedPageListHead;
MMPFNLIST MmFreePageListHead;
MMPFNLIST MmStandbyPageListHead;
MMPFNLIST MmModifiedPageListHead;
MMPFNLIST MmModifiedNoWritePageListHead;
MMPFNLIST MmBadPageListHead;

/* Room for the loader's runs behind MmPhysicalMemoryBlock (its Run[] is open-ended). */
static struct {
    PHYSICAL_MEMORY_DESCRIPTOR Header;
    PHYSICAL_MEMORY_RUN More[KSIM_MAX_MEMORY_RUNS - 1];
} MiPhysicalMemory;

static PMMPFNLIST const MiPageLists[] = {
    &MmZeroedPageListHead, &MmFreePageListHead, &MmStandbyPageListHead,
    &MmModifiedPageListHead, &MmModifiedNoWritePageListHead, &MmBadPageListHead,
};
#define MI_LIST_COUNT (sizeof(MiPageLists) / sizeof(MiPageLists[0]))

#define MI_UNLOADED_IMAGES 16
static struct { ULONG64 Base, Size; } MiUnloadedImages[MI_UNLOADED_IMAGES];
static ULONG MiUnloadedCount;

/* Windows marks a page whose mapping is gone by setting bit 0 of its PteAddress. */
#define MI_PFN_DELETED 1ULL

static VOID MiInsertPageInList(PMMPFNLIST List, PFN_NUMBER Page)
{
    PMMPFN pfn = &MmPfnDatabase[Page];

    pfn->u1.Flink = MM_EMPTY_LIST;
    pfn->u2.Blink = List->Blink;
    if (List->Blink == MM_EMPTY_LIST)
        List->Flink = Page;
    else
        MmPfnDatabase[List->Blink].u1.Flink = Page;
    List->Blink = Page;
    List->Total++;
}

/* Every list again from the entries' PageLocation, in page order. */
static VOID MiRebuildPageLists(VOID)
{
    ULONG i;
    PFN_NUMBER page;

    for (i = 0; i < MI_LIST_COUNT; i++) {
        MiPageLists[i]->Total = 0;
        MiPageLists[i]->ListName = (MMLISTS)i;
        MiPageLists[i]->Flink = MM_EMPTY_LIST;
        MiPageLists[i]->Blink = MM_EMPTY_LIST;
    }
    for (i = 0; i < MmPhysicalMemoryBlock->NumberOfRuns; i++) {
        PHYSICAL_MEMORY_RUN *run = &MmPhysicalMemoryBlock->Run[i];
        for (page = run->BasePage; page < run->BasePage + run->PageCount; page++) {
            ULONG location = MmPfnDatabase[page].u3.e1.PageLocation;
            if (location < MI_LIST_COUNT)
                MiInsertPageInList(MiPageLists[location], page);
        }
    }
    MmAvailablePages = MmZeroedPageListHead.Total + MmFreePageListHead.Total
        + MmStandbyPageListHead.Total;
    MmResidentAvailablePages = MmAvailablePages;
}

VOID MiInitializePfnDatabase(PKSIM_LOADER_BLOCK LoaderBlock)
{
    ULONG i, runs = LoaderBlock->NumberOfRuns;

    if (runs > KSIM_MAX_MEMORY_RUNS)
        runs = KSIM_MAX_MEMORY_RUNS;
    MmPhysicalMemoryBlock = &MiPhysicalMemory.Header;
    MmPhysicalMemoryBlock->NumberOfRuns = runs;
    MmPhysicalMemoryBlock->NumberOfPages = 0;
    for (i = 0; i < runs; i++) {
        MmPhysicalMemoryBlock->Run[i].BasePage = LoaderBlock->Runs[i].BasePage;
        MmPhysicalMemoryBlock->Run[i].PageCount = LoaderBlock->Runs[i].PageCount;
        MmPhysicalMemoryBlock->NumberOfPages += LoaderBlock->Runs[i].PageCount;
    }
    MmNumberOfPhysicalPages = MmPhysicalMemoryBlock->NumberOfPages;
    if (runs) {
        MmLowestPhysicalPage = MmPhysicalMemoryBlock->Run[0].BasePage;
        MmHighestPhysicalPage = MmPhysicalMemoryBlock->Run[runs - 1].BasePage
            + MmPhysicalMemoryBlock->Run[runs - 1].PageCount - 1;
    }
    MmPfnDatabase = (PMMPFN)LoaderBlock->PfnDatabase;
    if (MmPfnDatabase)
        MiRebuildPageLists();
}

/* The pages that mapped [Base, Base + Size) leave the active set for the free list;
 * the loader is about to clear their leaves. */
VOID MiFreeImagePages(PVOID Base, SIZE_T Size)
{
    ULONG64 first = (ULONG64)MiGetPteAddress(Base);
    ULONG64 last = (ULONG64)MiGetPteAddress((PUCHAR)Base + Size);
    ULONG i;
    PFN_NUMBER page;

    if (!MmPfnDatabase)
        return;
    for (i = 0; i < MmPhysicalMemoryBlock->NumberOfRuns; i++) {
        PHYSICAL_MEMORY_RUN *run = &MmPhysicalMemoryBlock->Run[i];
        for (page = run->BasePage; page < run->BasePage + run->PageCount; page++) {
            PMMPFN pfn = &MmPfnDatabase[page];
            if (pfn->u3.e1.PageLocation != ActiveAndValid || pfn->PteLong < first
                || pfn->PteLong >= last)
                continue;
            pfn->PteLong |= MI_PFN_DELETED;
            pfn->u3.ReferenceCount = 0;
            pfn->u3.e1.PageLocation = FreePageList;
        }
    }
    MiRebuildPageLists();
}

/* Oldest first out once the ring is full. */
VOID MiRememberUnloadedImage(PVOID Base, SIZE_T Size)
{
    ULONG slot = MiUnloadedCount++ % MI_UNLOADED_IMAGES;
    MiUnloadedImages[slot].Base = (ULONG64)Base;
    MiUnloadedImages[slot].Size = Size;
}

BOOLEAN MiInUnloadedImage(ULONG64 Va)
{
    ULONG i, n = MiUnloadedCount < MI_UNLOADED_IMAGES ? MiUnloadedCount : MI_UNLOADED_IMAGES;
    for (i = 0; i < n; i++)
        if (Va - MiUnloadedImages[i].Base < MiUnloadedImages[i].Size)
            return TRUE;
    return FALSE;
}
