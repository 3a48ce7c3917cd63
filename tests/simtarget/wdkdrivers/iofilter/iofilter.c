/*
 * iofilter.sys - a legacy filter driver of its own image, written for the tests: it
 * attaches by name (IoAttachDevice) over iostack.sys's \Device\IoStackKsim, loaded
 * before it, and passes every IRP down, device controls with a completion routine that
 * prints one "iofilter: ..." line; its unload detaches.
 */
#include <ntddk.h>

static UNICODE_STRING TargetName = RTL_CONSTANT_STRING(L"\\Device\\IoStackKsim");
static UNICODE_STRING MissingName = RTL_CONSTANT_STRING(L"\\Device\\NoSuchDeviceKsim");
static PDEVICE_OBJECT FilterDevice, Lower;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD FilterUnload;
DRIVER_DISPATCH FilterPass;
IO_COMPLETION_ROUTINE FilterDone;

NTSTATUS FilterDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    DbgPrint("iofilter: completion status=%08lx pending=%d device=%d location=%d of %d\n", Irp->IoStatus.Status,
             Irp->PendingReturned, DeviceObject == FilterDevice, Irp->CurrentLocation, Irp->StackCount);
    if (Irp->PendingReturned)
        IoMarkIrpPending(Irp);
    return STATUS_CONTINUE_COMPLETION;
}

NTSTATUS FilterPass(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    if (IoGetCurrentIrpStackLocation(Irp)->MajorFunction != IRP_MJ_DEVICE_CONTROL) {
        IoSkipCurrentIrpStackLocation(Irp);
        return IoCallDriver(Lower, Irp);
    }
    IoCopyCurrentIrpStackLocationToNext(Irp);
    IoSetCompletionRoutine(Irp, FilterDone, NULL, TRUE, TRUE, TRUE);
    return IoCallDriver(Lower, Irp);
}

VOID FilterUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    IoDetachDevice(Lower);
    IoDeleteDevice(FilterDevice);
    DbgPrint("iofilter: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT none;
    NTSTATUS status, missing;
    ULONG i;
    UNREFERENCED_PARAMETER(RegistryPath);

    status = IoCreateDevice(DriverObject, 0, NULL, FILE_DEVICE_UNKNOWN, 0, FALSE, &FilterDevice);
    if (!NT_SUCCESS(status))
        return status;
    missing = IoAttachDevice(FilterDevice, &MissingName, &none);
    status = IoAttachDevice(FilterDevice, &TargetName, &Lower);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(FilterDevice);
        return status;
    }
    FilterDevice->Flags |= Lower->Flags & (DO_BUFFERED_IO | DO_DIRECT_IO);
    FilterDevice->Flags &= ~DO_DEVICE_INITIALIZING;
    for (i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        DriverObject->MajorFunction[i] = FilterPass;
    DriverObject->DriverUnload = FilterUnload;
    DbgPrint("iofilter: attached missing=%08lx none=%d stack=%d\n", missing, none == NULL, FilterDevice->StackSize);
    return STATUS_SUCCESS;
}
