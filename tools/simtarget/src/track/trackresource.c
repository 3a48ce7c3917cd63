/*
 * trackresource.c - the general-resource class: device objects, converted strings, I/O
 * space mappings, MDLs and locked-page mappings (track.md, "What it tracks").
 *
 * A record's Value is what the release function is later given: the device object, the
 * string's Buffer (the UNICODE_STRING/ANSI_STRING itself is usually a local), the
 * mapped address, the MDL. Only MmMapIoSpace records carry a size. IoBuildPartialMdl
 * fills an MDL the caller already owns, so it is counted but creates no record.
 * Not here: pool memory (trackmemory.c), handles (trackhandle.c).
 */
#define TRACK_SOURCE_NAME "track\\trackresource.c"
#include "trackp.h"

NTSTATUS Track_IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
                              PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType,
                              ULONG DeviceCharacteristics, BOOLEAN Exclusive,
                              PDEVICE_OBJECT *DeviceObject, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = IoCreateDevice(DriverObject, DeviceExtensionSize, DeviceName, DeviceType,
                                     DeviceCharacteristics, Exclusive, DeviceObject);

    TrackRecordResult(record, TrackFnIoCreateDevice, NT_SUCCESS(status),
                      NT_SUCCESS(status) ? (ULONG_PTR)*DeviceObject : 0, 0, 0, File, Line);
    return status;
}

VOID Track_IoDeleteDevice(PDEVICE_OBJECT DeviceObject, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    if (TrackRemoveRecord((ULONG_PTR)DeviceObject, TrackFnIoDeleteDevice, &record, File, Line) !=
        TrackLookupWrongRelease) {
        IoDeleteDevice(DeviceObject);
    }
    TrackFreeRecord(record);
}

NTSTATUS Track_RtlAnsiStringToUnicodeString(PUNICODE_STRING DestinationString,
                                            PCANSI_STRING SourceString,
                                            BOOLEAN AllocateDestinationString, PCSTR File,
                                            ULONG Line)
{
    PTRACK_RECORD record = AllocateDestinationString ? TrackAllocateRecord() : NULL;
    NTSTATUS status =
        RtlAnsiStringToUnicodeString(DestinationString, SourceString, AllocateDestinationString);

    TrackRecordResult(record, TrackFnRtlAnsiStringToUnicodeString,
                      AllocateDestinationString && NT_SUCCESS(status),
                      (ULONG_PTR)DestinationString->Buffer, 0, 0, File, Line);
    return status;
}

VOID Track_RtlFreeUnicodeString(PUNICODE_STRING UnicodeString, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    if (TrackRemoveRecord((ULONG_PTR)UnicodeString->Buffer, TrackFnRtlFreeUnicodeString, &record,
                          File, Line) != TrackLookupWrongRelease) {
        RtlFreeUnicodeString(UnicodeString);
    }
    TrackFreeRecord(record);
}

NTSTATUS Track_RtlUnicodeStringToAnsiString(PANSI_STRING DestinationString,
                                            PCUNICODE_STRING SourceString,
                                            BOOLEAN AllocateDestinationString, PCSTR File,
                                            ULONG Line)
{
    PTRACK_RECORD record = AllocateDestinationString ? TrackAllocateRecord() : NULL;
    NTSTATUS status =
        RtlUnicodeStringToAnsiString(DestinationString, SourceString, AllocateDestinationString);

    TrackRecordResult(record, TrackFnRtlUnicodeStringToAnsiString,
                      AllocateDestinationString && NT_SUCCESS(status),
                      (ULONG_PTR)DestinationString->Buffer, 0, 0, File, Line);
    return status;
}

VOID Track_RtlFreeAnsiString(PANSI_STRING AnsiString, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    if (TrackRemoveRecord((ULONG_PTR)AnsiString->Buffer, TrackFnRtlFreeAnsiString, &record, File,
                          Line) != TrackLookupWrongRelease) {
        RtlFreeAnsiString(AnsiString);
    }
    TrackFreeRecord(record);
}

PVOID Track_MmMapIoSpace(PHYSICAL_ADDRESS PhysicalAddress, SIZE_T NumberOfBytes,
                         MEMORY_CACHING_TYPE CacheType, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    PVOID mapped = MmMapIoSpace(PhysicalAddress, NumberOfBytes, CacheType);

    TrackRecordResult(record, TrackFnMmMapIoSpace, mapped != NULL, (ULONG_PTR)mapped,
                      NumberOfBytes, TRACK_RECORD_HAS_SIZE, File, Line);
    return mapped;
}

VOID Track_MmUnmapIoSpace(PVOID BaseAddress, SIZE_T NumberOfBytes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    if (TrackRemoveRecord((ULONG_PTR)BaseAddress, TrackFnMmUnmapIoSpace, &record, File, Line) !=
        TrackLookupWrongRelease) {
        MmUnmapIoSpace(BaseAddress, NumberOfBytes);
    }
    TrackFreeRecord(record);
}

PMDL Track_IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                         BOOLEAN ChargeQuota, PIRP Irp, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    PMDL mdl = IoAllocateMdl(VirtualAddress, Length, SecondaryBuffer, ChargeQuota, Irp);

    TrackRecordResult(record, TrackFnIoAllocateMdl, mdl != NULL, (ULONG_PTR)mdl, 0, 0, File,
                      Line);
    return mdl;
}

VOID Track_IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length,
                             PCSTR File, ULONG Line)
{
    (void)File;
    (void)Line;
    IoBuildPartialMdl(SourceMdl, TargetMdl, VirtualAddress, Length);
    TrackCountCall(TrackFnIoBuildPartialMdl);
}

VOID Track_IoFreeMdl(PMDL Mdl, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;

    if (TrackRemoveRecord((ULONG_PTR)Mdl, TrackFnIoFreeMdl, &record, File, Line) !=
        TrackLookupWrongRelease) {
        IoFreeMdl(Mdl);
    }
    TrackFreeRecord(record);
}

PVOID Track_MmMapLockedPages(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode, PCSTR File,
                             ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    PVOID mapped = MmMapLockedPages(MemoryDescriptorList, AccessMode);

    TrackRecordResult(record, TrackFnMmMapLockedPages, mapped != NULL, (ULONG_PTR)mapped, 0, 0,
                      File, Line);
    return mapped;
}

VOID Track_MmUnmapLockedPages(PVOID BaseAddress, PMDL MemoryDescriptorList, PCSTR File,
                              ULONG Line)
{
    PTRACK_RECORD record;

    if (TrackRemoveRecord((ULONG_PTR)BaseAddress, TrackFnMmUnmapLockedPages, &record, File,
                          Line) != TrackLookupWrongRelease) {
        MmUnmapLockedPages(BaseAddress, MemoryDescriptorList);
    }
    TrackFreeRecord(record);
}
