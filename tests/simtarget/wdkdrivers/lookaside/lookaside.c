/*
 * lookaside.sys - lookaside lists as a WDM driver uses them, written for the tests:
 * the nonpaged and paged lists with the system's pool routines and with the driver's
 * own, and LOOKASIDE_LIST_EX.  A user program sends IOCTL_LOOKASIDE_CASES; each case
 * prints one "lookaside: <case> ..." line with the list's counters, and every list is
 * deleted before the request completes, so the pool holds none of its blocks after.
 * The driver also counts device controls it does not know (IOCTL_LOOKASIDE_STRAYS
 * returns the count): the system loop's own IOCTLs must not reach it.
 */
#include <ntddk.h>

#define IOCTL_LOOKASIDE_CASES  CTL_CODE(40002, 0x900, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_LOOKASIDE_STRAYS CTL_CODE(40002, 0x901, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define TAG_NPAGED 'pNkL'
#define TAG_PAGED  'gPkL'
#define TAG_EX     'xEkL'
#define TAG_OWN    'wOkL'

static UNICODE_STRING DeviceName = RTL_CONSTANT_STRING(L"\\Device\\LookasideKsim");
static UNICODE_STRING DosName = RTL_CONSTANT_STRING(L"\\DosDevices\\LookasideKsim");
static NPAGED_LOOKASIDE_LIST NPaged;
static PAGED_LOOKASIDE_LIST Paged;
static LOOKASIDE_LIST_EX Ex;
static ULONG OwnAllocs, OwnFrees;
static LONG Strays;
static ULONG LastStray;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD LookasideUnload;
DRIVER_DISPATCH LookasideCreateClose;
DRIVER_DISPATCH LookasideDeviceControl;

static NTSTATUS Complete(PIRP Irp, NTSTATUS Status, ULONG_PTR Information)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = Information;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

NTSTATUS LookasideCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    return Complete(Irp, STATUS_SUCCESS, 0);
}

static PVOID NTAPI OwnAllocate(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    UNREFERENCED_PARAMETER(Tag);
    OwnAllocs++;
    return ExAllocatePoolWithTag(PoolType, NumberOfBytes, TAG_OWN);
}

static VOID NTAPI OwnFree(PVOID Buffer)
{
    OwnFrees++;
    ExFreePoolWithTag(Buffer, TAG_OWN);
}

/* Six out (all misses), six back (the list keeps its depth, the rest is freed), three
 * out again at DISPATCH_LEVEL (hits) and back, then delete. */
static VOID CaseNPaged(VOID)
{
    PVOID block[6];
    ULONG i, aligned = 1, distinct;
    USHORT held;
    KIRQL irql;

    ExInitializeNPagedLookasideList(&NPaged, NULL, NULL, POOL_NX_ALLOCATION, 40, TAG_NPAGED, 0);
    for (i = 0; i < 6; i++) {
        block[i] = ExAllocateFromNPagedLookasideList(&NPaged);
        aligned &= block[i] != NULL && ((ULONG_PTR)block[i] & 15) == 0;
    }
    distinct = block[0] != block[1] && block[4] != block[5];
    for (i = 0; i < 6; i++)
        ExFreeToNPagedLookasideList(&NPaged, block[i]);
    held = ExQueryDepthSList(&NPaged.L.ListHead);
    /* A nonpaged list may be used up to DISPATCH_LEVEL. */
    KeRaiseIrql(DISPATCH_LEVEL, &irql);
    for (i = 0; i < 3; i++)
        block[i] = ExAllocateFromNPagedLookasideList(&NPaged);
    KeLowerIrql(irql);
    /* Last in, first out: the first block taken is the last one kept. */
    DbgPrint("lookaside: npaged depth=%u held=%u allocs=%lu misses=%lu frees=%lu free_misses=%lu "
             "aligned=%lu distinct=%lu size=%lu tag=%d\n", NPaged.L.Depth, held, NPaged.L.TotalAllocates,
             NPaged.L.AllocateMisses, NPaged.L.TotalFrees, NPaged.L.FreeMisses, aligned, distinct,
             NPaged.L.Size, NPaged.L.Tag == TAG_NPAGED);
    for (i = 0; i < 3; i++)
        ExFreeToNPagedLookasideList(&NPaged, block[i]);
    ExDeleteNPagedLookasideList(&NPaged);
}

static VOID CasePagedOwnRoutines(VOID)
{
    PVOID block[6];
    ULONG i;

    OwnAllocs = OwnFrees = 0;
    ExInitializePagedLookasideList(&Paged, OwnAllocate, OwnFree, 0, 100, TAG_PAGED, 0);
    for (i = 0; i < 6; i++)
        block[i] = ExAllocateFromPagedLookasideList(&Paged);
    for (i = 0; i < 6; i++)
        ExFreeToPagedLookasideList(&Paged, block[i]);
    block[0] = ExAllocateFromPagedLookasideList(&Paged);
    ExFreeToPagedLookasideList(&Paged, block[0]);
    DbgPrint("lookaside: paged own allocs=%lu frees_before_delete=%lu irql=%u\n", OwnAllocs, OwnFrees,
             (unsigned)KeGetCurrentIrql());
    ExDeletePagedLookasideList(&Paged);
    DbgPrint("lookaside: paged deleted own_frees=%lu\n", OwnFrees);
}

static VOID CaseEx(VOID)
{
    LOOKASIDE_LIST_EX bad;
    NTSTATUS status, refused;
    PVOID block[5];
    ULONG i;
    USHORT held, flushed;

    refused = ExInitializeLookasideListEx(&bad, NULL, NULL, NonPagedPoolNx,
                                          EX_LOOKASIDE_LIST_EX_FLAGS_RAISE_ON_FAIL |
                                          EX_LOOKASIDE_LIST_EX_FLAGS_FAIL_NO_RAISE, 64, TAG_EX, 0);
    status = ExInitializeLookasideListEx(&Ex, NULL, NULL, NonPagedPoolNx, 0, 64, TAG_EX, 0);
    if (!NT_SUCCESS(status)) {
        DbgPrint("lookaside: ex init failed %08lx\n", status);
        return;
    }
    for (i = 0; i < 5; i++)
        block[i] = ExAllocateFromLookasideListEx(&Ex);
    for (i = 0; i < 5; i++)
        ExFreeToLookasideListEx(&Ex, block[i]);
    held = ExQueryDepthSList(&Ex.L.ListHead);
    ExFlushLookasideListEx(&Ex);
    flushed = ExQueryDepthSList(&Ex.L.ListHead);
    block[0] = ExAllocateFromLookasideListEx(&Ex);
    ExFreeToLookasideListEx(&Ex, block[0]);
    DbgPrint("lookaside: ex status=%08lx refused=%08lx held=%u flushed=%u allocs=%lu misses=%lu frees=%lu "
             "free_misses=%lu\n", status, refused, held, flushed, Ex.L.TotalAllocates, Ex.L.AllocateMisses,
             Ex.L.TotalFrees, Ex.L.FreeMisses);
    ExDeleteLookasideListEx(&Ex);
}

NTSTATUS LookasideDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG code = sp->Parameters.DeviceIoControl.IoControlCode;
    UNREFERENCED_PARAMETER(DeviceObject);

    switch (code) {
    case IOCTL_LOOKASIDE_CASES:
        CaseNPaged();
        CasePagedOwnRoutines();
        CaseEx();
        return Complete(Irp, STATUS_SUCCESS, 0);
    case IOCTL_LOOKASIDE_STRAYS:
        if (sp->Parameters.DeviceIoControl.OutputBufferLength < 2 * sizeof(ULONG))
            return Complete(Irp, STATUS_BUFFER_TOO_SMALL, 0);
        ((PULONG)Irp->AssociatedIrp.SystemBuffer)[0] = (ULONG)Strays;
        ((PULONG)Irp->AssociatedIrp.SystemBuffer)[1] = LastStray;
        return Complete(Irp, STATUS_SUCCESS, 2 * sizeof(ULONG));
    default:
        InterlockedIncrement(&Strays);
        LastStray = code;
        return Complete(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
}

VOID LookasideUnload(PDRIVER_OBJECT DriverObject)
{
    IoDeleteSymbolicLink(&DosName);
    IoDeleteDevice(DriverObject->DeviceObject);
    DbgPrint("lookaside: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT device;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(RegistryPath);

    status = IoCreateDevice(DriverObject, 0, &DeviceName, FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
    if (!NT_SUCCESS(status))
        return status;
    device->Flags |= DO_BUFFERED_IO;
    DriverObject->MajorFunction[IRP_MJ_CREATE] = LookasideCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = LookasideCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLEANUP] = LookasideCreateClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = LookasideDeviceControl;
    DriverObject->DriverUnload = LookasideUnload;
    status = IoCreateSymbolicLink(&DosName, &DeviceName);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(device);
        return status;
    }
    device->Flags &= ~DO_DEVICE_INITIALIZING;
    DbgPrint("lookaside: loaded\n");
    return STATUS_SUCCESS;
}
