/*
 * twofiles.sys - what the compatibility header must make work in a driver of two
 * sources: the WDK's lower-case try/except, _Dispatch_type_, tagged pool through
 * POOL_TAGGING, ExAllocatePoolZero and the POOL_FLAG_* constants, the interlocked bit
 * tests in both sources, IRQL through the kernel's exports, dontuse.h and
 * RtlIsNtDdiVersionAvailable.
 */
#include <ntddk.h>
#include <dontuse.h>

LONG TwoFlags;
ULONG TwoOther(VOID);

DRIVER_INITIALIZE DriverEntry;
_Dispatch_type_(IRP_MJ_CREATE)
DRIVER_DISPATCH TwoCreate;

NTSTATUS TwoCreate(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    Irp->IoStatus.Status = STATUS_SUCCESS;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_SUCCESS;
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PULONG zeroed = ExAllocatePoolZero(NonPagedPoolNx, 64, 'owT2');
    PVOID tagged = ExAllocatePoolWithTag(NonPagedPool, 32, 'owT1');
    NTSTATUS caught = STATUS_SUCCESS;
    KIRQL old;
    BOOLEAN first, second;
    UNREFERENCED_PARAMETER(RegistryPath);

    first = InterlockedBitTestAndSet(&TwoFlags, 3);
    second = InterlockedBitTestAndSet(&TwoFlags, 3);
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    DbgPrint("two: irql %u then %u\n", (unsigned)old, (unsigned)KeGetCurrentIrql());
    KeLowerIrql(old);
    try {
        ExRaiseStatus(STATUS_UNSUCCESSFUL);
    } except (EXCEPTION_EXECUTE_HANDLER) {
        caught = GetExceptionCode();
    }
    DbgPrint("two: zero=%lu bits=%u%u other=%lu caught=%08lx win7=%u\n", zeroed ? zeroed[0] + zeroed[15] : 99,
             (unsigned)first, (unsigned)second, TwoOther(), (ULONG)caught,
             (unsigned)RtlIsNtDdiVersionAvailable(0x06010000));
    if (zeroed)
        ExFreePoolWithTag(zeroed, 'owT2');
    if (tagged)
        ExFreePoolWithTag(tagged, 'owT1');
    DriverObject->MajorFunction[IRP_MJ_CREATE] = TwoCreate;
    return STATUS_SUCCESS;
}
