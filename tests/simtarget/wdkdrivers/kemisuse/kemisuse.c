/*
 * kemisuse.sys - one misuse of the scheduling routines, chosen at build time with
 * -D MISUSE=N, that the WDK documents as a driver bug; the kernel must stop with the
 * bug check Windows uses for it.
 *   1 a DPC routine that returns at PASSIVE_LEVEL
 *   2 KeWaitForMultipleObjects on 4 objects without a wait block array
 *   3 a work item routine that returns at DISPATCH_LEVEL
 *   4 ExAcquireFastMutex on a fast mutex the thread already owns
 *   5 KeLeaveCriticalRegion without KeEnterCriticalRegion
 */
#include <ntddk.h>

static KDPC Dpc;
static KEVENT Events[4];
static FAST_MUTEX Mutex;
static PIO_WORKITEM Item;

DRIVER_INITIALIZE DriverEntry;
KDEFERRED_ROUTINE LowersIrql;
IO_WORKITEM_ROUTINE StaysRaised;

VOID LowersIrql(PKDPC Self, PVOID Context, PVOID Argument1, PVOID Argument2)
{
    UNREFERENCED_PARAMETER(Self);
    UNREFERENCED_PARAMETER(Context);
    UNREFERENCED_PARAMETER(Argument1);
    UNREFERENCED_PARAMETER(Argument2);
    KeLowerIrql(PASSIVE_LEVEL);
}

VOID StaysRaised(PDEVICE_OBJECT DeviceObject, PVOID Context)
{
    KIRQL old;
    UNREFERENCED_PARAMETER(DeviceObject);
    UNREFERENCED_PARAMETER(Context);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT device;
    PVOID objects[4];
    LARGE_INTEGER delay;
    int i;
    UNREFERENCED_PARAMETER(RegistryPath);

    DbgPrint("misuse: case %d\n", MISUSE);
    switch (MISUSE) {
    case 1:
        KeInitializeDpc(&Dpc, LowersIrql, NULL);
        KeInsertQueueDpc(&Dpc, NULL, NULL);
        break;
    case 2:
        for (i = 0; i < 4; i++) {
            KeInitializeEvent(&Events[i], NotificationEvent, TRUE);
            objects[i] = &Events[i];
        }
        KeWaitForMultipleObjects(4, objects, WaitAny, Executive, KernelMode, FALSE, NULL, NULL);
        break;
    case 3:
        IoCreateDevice(DriverObject, 0, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
        Item = IoAllocateWorkItem(device);
        IoQueueWorkItem(Item, StaysRaised, DelayedWorkQueue, NULL);
        delay.QuadPart = -10000;
        KeDelayExecutionThread(KernelMode, FALSE, &delay);
        break;
    case 4:
        ExInitializeFastMutex(&Mutex);
        ExAcquireFastMutex(&Mutex);
        ExAcquireFastMutex(&Mutex);
        break;
    default:
        KeLeaveCriticalRegion();
        break;
    }
    DbgPrint("misuse: not stopped\n");
    return STATUS_SUCCESS;
}
