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

/* Records the handle a successful open or create call stored in *Handle. */
static VOID TrackHandleResult(PTRACK_RECORD Record, TRACK_FUNCTION Allocator, BOOLEAN Succeeded,
                              const HANDLE *Handle, PCSTR File, ULONG Line)
{
    TrackRecordResult(Record, Allocator, Succeeded, Succeeded ? (ULONG_PTR)*Handle : 0, 0, 0,
                      File, Line);
}

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

    TrackHandleResult(record, TrackFnIoCreateNotificationEvent, event != NULL, EventHandle, File,
                      Line);
    return event;
}

PKEVENT Track_IoCreateSynchronizationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle,
                                           PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    PKEVENT event = IoCreateSynchronizationEvent(EventName, EventHandle);

    TrackHandleResult(record, TrackFnIoCreateSynchronizationEvent, event != NULL, EventHandle, File,
                      Line);
    return event;
}

NTSTATUS Track_ZwCreateDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
                                       POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File,
                                       ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = ZwCreateDirectoryObject(DirectoryHandle, DesiredAccess, ObjectAttributes);

    TrackHandleResult(record, TrackFnZwCreateDirectoryObject, NT_SUCCESS(status),
                      DirectoryHandle, File, Line);
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

    TrackHandleResult(record, TrackFnZwCreateFile, NT_SUCCESS(status), FileHandle, File,
                      Line);
    return status;
}

NTSTATUS Track_ZwOpenKey(PHANDLE KeyHandle, ACCESS_MASK DesiredAccess,
                         POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = ZwOpenKey(KeyHandle, DesiredAccess, ObjectAttributes);

    TrackHandleResult(record, TrackFnZwOpenKey, NT_SUCCESS(status), KeyHandle, File,
                      Line);
    return status;
}

NTSTATUS Track_ZwOpenSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess,
                             POBJECT_ATTRIBUTES ObjectAttributes, PCSTR File, ULONG Line)
{
    PTRACK_RECORD record = TrackAllocateRecord();
    NTSTATUS status = ZwOpenSection(SectionHandle, DesiredAccess, ObjectAttributes);

    TrackHandleResult(record, TrackFnZwOpenSection, NT_SUCCESS(status), SectionHandle, File,
                      Line);
    return status;
}
