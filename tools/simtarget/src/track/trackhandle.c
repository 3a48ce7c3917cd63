/*
 * trackhandle.c - the handle class: event, directory, file, key and section handles and
 * ZwClose (track.md, "What it tracks").
 *
 * A record's Value is the handle; ZwClose is the one release function. A ZwClose that
 * Track refuses (the value belongs to another kind of object) returns
 * STATUS_INVALID_HANDLE without closing anything.
 * Not here: memory and general resources.
 */
#define TRACK_SOURCE_NAME "track\\trackhandle.c"
#include "trackp.h"

#define STATUS_INVALID_HANDLE ((NTSTATUS)0xC0000008L)

NTSTATUS Track_ZwClose(HANDLE Handle, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record;
    NTSTATUS status = STATUS_INVALID_HANDLE;

    if (TrackRemoveRecord((ULONG_PTR)Handle, TrackFnZwClose, &record, File, Line) !=
        TrackLookupWrongRelease) {
        status = ZwClose(Handle);
    }
    TrackFreeRecord(record);
    return status;
}

PKEVENT Track_IoCreateNotificationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle,
                                        PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    PKEVENT event = IoCreateNotificationEvent(EventName, EventHandle);

    TrackRecordResult(record, TrackFnIoCreateNotificationEvent, event != NULL,
                      event != NULL ? (ULONG_PTR)*EventHandle : 0, 0, 0, File, Line);
    return event;
}

PKEVENT Track_IoCreateSynchronizationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle,
                                           PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    PKEVENT event = IoCreateSynchronizationEvent(EventName, EventHandle);

    TrackRecordResult(record, TrackFnIoCreateSynchronizationEvent, event != NULL,
                      event != NULL ? (ULONG_PTR)*EventHandle : 0, 0, 0, File, Line);
    return event;
}

NTSTATUS Track_ZwCreateDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
                                       POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File,
                                       ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = ZwCreateDirectoryObject(DirectoryHandle, DesiredAccess, ObjectAttributes);

    TrackRecordResult(record, TrackFnZwCreateDirectoryObject, NT_SUCCESS(status),
                      NT_SUCCESS(status) ? (ULONG_PTR)*DirectoryHandle : 0, 0, 0, File, Line);
    return status;
}

NTSTATUS Track_ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                            POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
                            PLARGE_INTEGER AllocationSize, ULONG FileAttributes,
                            ULONG ShareAccess, ULONG CreateDisposition, ULONG CreateOptions,
                            PVOID EaBuffer, ULONG EaLength, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = ZwCreateFile(FileHandle, DesiredAccess, ObjectAttributes, IoStatusBlock,
                                   AllocationSize, FileAttributes, ShareAccess,
                                   CreateDisposition, CreateOptions, EaBuffer, EaLength);

    TrackRecordResult(record, TrackFnZwCreateFile, NT_SUCCESS(status),
                      NT_SUCCESS(status) ? (ULONG_PTR)*FileHandle : 0, 0, 0, File, Line);
    return status;
}

NTSTATUS Track_ZwOpenKey(PHANDLE KeyHandle, ACCESS_MASK DesiredAccess,
                         POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = ZwOpenKey(KeyHandle, DesiredAccess, ObjectAttributes);

    TrackRecordResult(record, TrackFnZwOpenKey, NT_SUCCESS(status),
                      NT_SUCCESS(status) ? (ULONG_PTR)*KeyHandle : 0, 0, 0, File, Line);
    return status;
}

NTSTATUS Track_ZwOpenSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess,
                             POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = ZwOpenSection(SectionHandle, DesiredAccess, ObjectAttributes);

    TrackRecordResult(record, TrackFnZwOpenSection, NT_SUCCESS(status),
                      NT_SUCCESS(status) ? (ULONG_PTR)*SectionHandle : 0, 0, 0, File, Line);
    return status;
}
