/*
 * wdmsec.c - IoCreateDeviceSecure, which the WDK ships as the static library
 * wdmsec.lib rather than as a kernel export.  The simulated kernel has no security
 * descriptors, so the device is created as IoCreateDevice creates it and the SDDL
 * string and class GUID are only checked for presence, as the documentation
 * requires a DefaultSDDLString.
 */
#include <ntddk.h>

NTSTATUS WdmlibIoCreateDeviceSecure(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
    PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType, ULONG DeviceCharacteristics,
    BOOLEAN Exclusive, PCUNICODE_STRING DefaultSDDLString, LPCGUID DeviceClassGuid,
    PDEVICE_OBJECT *DeviceObject)
{
    (void)DeviceClassGuid;
    if (!DefaultSDDLString || !DefaultSDDLString->Buffer)
        return STATUS_INVALID_PARAMETER;
    return IoCreateDevice(DriverObject, DeviceExtensionSize, DeviceName, DeviceType,
                          DeviceCharacteristics, Exclusive, DeviceObject);
}

NTSTATUS IoCreateDeviceSecure(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
    PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType, ULONG DeviceCharacteristics,
    BOOLEAN Exclusive, PCUNICODE_STRING DefaultSDDLString, LPCGUID DeviceClassGuid,
    PDEVICE_OBJECT *DeviceObject)
{
    return WdmlibIoCreateDeviceSecure(DriverObject, DeviceExtensionSize, DeviceName, DeviceType,
                                      DeviceCharacteristics, Exclusive, DefaultSDDLString,
                                      DeviceClassGuid, DeviceObject);
}
