/*
 * nullimport.sys - a driver that calls two routines no kernel exports, for linking with
 * lld-link /FORCE:UNRESOLVED: the linker drops both imports and leaves the calls
 * aiming outside the image.  The kernel must refuse it at load, naming both.
 */
#include <ntddk.h>

NTKERNELAPI VOID NTAPI KsimRoutineNobodyExports(PVOID Context);
NTKERNELAPI NTSTATUS NTAPI KsimOtherMissingRoutine(ULONG Value);

DRIVER_INITIALIZE DriverEntry;

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(RegistryPath);
    DbgPrint("nullimport: DriverEntry ran\n");
    KsimRoutineNobodyExports(DriverObject);
    if (KsimOtherMissingRoutine(7) != STATUS_SUCCESS)
        return STATUS_UNSUCCESSFUL;
    return STATUS_SUCCESS;
}
