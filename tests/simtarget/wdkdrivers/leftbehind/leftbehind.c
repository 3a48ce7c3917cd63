/*
 * leftbehind.sys - a driver whose DriverUnload forgets to cancel what DriverEntry
 * started, one kind per build (LEFT_BEHIND):
 *   1  a thread notify routine that stays registered;
 *   2  a periodic timer whose KTIMER and KDPC are in pool, so only its DPC routine
 *      lies in the image;
 *   3  a periodic timer whose KTIMER and KDPC are the image's own globals.
 * DriverEntry prints one "left:" line with the address that outlives the image.
 */
#include <ntddk.h>

#ifndef LEFT_BEHIND
#define LEFT_BEHIND 1
#endif

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD LeftUnload;

VOID LeftUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    DbgPrint("left: unload\n");
}

#if LEFT_BEHIND == 1

static VOID NTAPI ThreadNotify(HANDLE ProcessId, HANDLE ThreadId, BOOLEAN Create)
{
    DbgPrint("left: thread pid=%u tid=%u create=%u\n", (ULONG)(ULONG_PTR)ProcessId,
             (ULONG)(ULONG_PTR)ThreadId, Create);
}

static VOID LeaveBehind(VOID)
{
    NTSTATUS status = PsSetCreateThreadNotifyRoutine(ThreadNotify);
    DbgPrint("left: notify %p status=%08lx\n", (PVOID)ThreadNotify, status);
}

#else

typedef struct _PERIODIC {
    KTIMER Timer;
    KDPC Dpc;
} PERIODIC;

KDEFERRED_ROUTINE TimerRoutine;
static PERIODIC InImage;
static LONG Runs;

VOID TimerRoutine(PKDPC Self, PVOID Context, PVOID Argument1, PVOID Argument2)
{
    UNREFERENCED_PARAMETER(Self);
    UNREFERENCED_PARAMETER(Context);
    UNREFERENCED_PARAMETER(Argument1);
    UNREFERENCED_PARAMETER(Argument2);
    Runs++;
}

static VOID LeaveBehind(VOID)
{
    PERIODIC *periodic = LEFT_BEHIND == 2
        ? ExAllocatePoolWithTag(NonPagedPool, sizeof(PERIODIC), 'tfeL') : &InImage;
    LARGE_INTEGER due;
    if (!periodic)
        return;
    KeInitializeTimer(&periodic->Timer);
    KeInitializeDpc(&periodic->Dpc, TimerRoutine, NULL);
    due.QuadPart = -10000;               /* 1 ms */
    KeSetTimerEx(&periodic->Timer, due, 1, &periodic->Dpc);
    if (LEFT_BEHIND == 2)
        DbgPrint("left: dpc %p\n", (PVOID)TimerRoutine);
    else
        DbgPrint("left: timer %p size %u\n", (PVOID)periodic, (ULONG)sizeof(PERIODIC));
}

#endif

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(RegistryPath);
    DriverObject->DriverUnload = LeftUnload;
    LeaveBehind();
    return STATUS_SUCCESS;
}
