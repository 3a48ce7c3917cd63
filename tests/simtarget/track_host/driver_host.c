/*
 * driver_host.c - plays the I/O manager for trackdemo on the test host: loads it with a
 * DRIVER_OBJECT and a registry path, sends IRP_MJ_DEVICE_CONTROL requests built in the
 * real x64 IRP/IO_STACK_LOCATION layout, and unloads it. Called from the tests with
 * ctypes.
 */
#include <stdlib.h>
#include <string.h>

#include "ntdecl.h"

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath);

DRIVER_OBJECT HostDriverObject;
static WCHAR HostRegistryPathText[] =
    u"\\Registry\\Machine\\System\\CurrentControlSet\\Services\\trackdemo";
static UNICODE_STRING HostRegistryPath;

int HostLoad(void)
{
    memset(&HostDriverObject, 0, sizeof(HostDriverObject));
    RtlInitUnicodeString(&HostRegistryPath, HostRegistryPathText);
    return (int)DriverEntry(&HostDriverObject, &HostRegistryPath);
}

/* Returns the IRP's final status; -1 if the driver did not complete it. */
int HostDeviceControl(ULONG IoControlCode)
{
    extern int HostCompletedIrps;
    IRP irp;
    IO_STACK_LOCATION stack;
    int completed = HostCompletedIrps;
    PDEVICE_OBJECT device = HostDriverObject.DeviceObject;
    NTSTATUS status;

    memset(&irp, 0, sizeof(irp));
    memset(&stack, 0, sizeof(stack));
    stack.MajorFunction = IRP_MJ_DEVICE_CONTROL;
    stack.Parameters.DeviceIoControl.IoControlCode = IoControlCode;
    stack.DeviceObject = device;
    irp.StackCount = 1;
    irp.CurrentLocation = 1;
    irp.Tail.Overlay.CurrentStackLocation = &stack;
    status = HostDriverObject.MajorFunction[IRP_MJ_DEVICE_CONTROL](device, &irp);
    if (HostCompletedIrps != completed + 1 || irp.IoStatus.Status != status) {
        return -1;
    }
    return (int)status;
}

void HostUnload(void)
{
    HostDriverObject.DriverUnload(&HostDriverObject);
}
