/*
 * file.c - files for drivers that log: ZwCreateFile, ZwOpenFile, ZwReadFile,
 * ZwWriteFile, ZwQueryInformationFile, ZwSetInformationFile on names under \??\C:\, \DosDevices\C:\,
 * \GLOBAL??\C:\ and \SystemRoot\, backed by a host directory (`kdcon-sim --files DIR`,
 * the machine's hostfiles.py).  Without one every such name fails with
 * STATUS_OBJECT_PATH_NOT_FOUND.  Other names (\Device\...) open a file object with no
 * data, as before.
 *
 * The kernel does what the I/O manager does before a file system sees a request
 * (the routines' reference pages): PASSIVE_LEVEL only (above it, bug check 0xA, as
 * pageable code run at DISPATCH_LEVEL ends); a disposition above FILE_MAXIMUM_DISPOSITION,
 * both synchronous options, a synchronous option without SYNCHRONIZE, or both
 * FILE_DIRECTORY_FILE and FILE_NON_DIRECTORY_FILE are STATUS_INVALID_PARAMETER; the
 * handle goes where OBJ_KERNEL_HANDLE says (ob.c); the handle of a read or write must
 * be a file's (STATUS_INVALID_HANDLE, STATUS_OBJECT_TYPE_MISMATCH).  It then asks the
 * machine through the control port (KSIM_CONTROL_FILE) with a KSIM_FILE_REQUEST, which
 * hostfiles.py carries out before the OUT instruction returns, so every request
 * completes synchronously: the routines never return STATUS_PENDING, fill the
 * IO_STATUS_BLOCK and set the optional event.  The host file is closed when the file
 * object's last reference goes.
 *
 * Not here: RootDirectory-relative names (STATUS_INVALID_PARAMETER), APC routines
 * (ignored, as drivers pass NULL), other information classes (STATUS_INVALID_INFO_CLASS),
 * deleting or renaming files.
 */
#include "obp.h"

#define KSIM_FILE_OPEN  1
#define KSIM_FILE_READ  2
#define KSIM_FILE_WRITE 3
#define KSIM_FILE_QUERY 4
#define KSIM_FILE_CLOSE 5
#define KSIM_FILE_SET   6
#define KSIM_FILE_OFFSET_GIVEN 1
#define KSIM_FILE_SYNCHRONOUS  2

#define FILE_OPEN 1
#define FILE_MAXIMUM_DISPOSITION 5
#define FILE_DIRECTORY_FILE 0x00000001
#define FILE_SYNCHRONOUS_IO_ALERT 0x00000010
#define FILE_SYNCHRONOUS_IO_NONALERT 0x00000020
#define FILE_NON_DIRECTORY_FILE 0x00000040
#define FileStandardInformation 5
#define FilePositionInformation 14
#define FileEndOfFileInformation 20

/* The request the machine carries out (hostfiles.py REQUEST_FORMAT). */
typedef struct _KSIM_FILE_REQUEST {
    ULONG Operation;
    NTSTATUS Status;
    ULONG HostFile;
    ULONG Disposition;         /* open: CreateDisposition; query: the information class */
    ULONG Options;
    ULONG Access;              /* open: the granted access, generic rights mapped */
    ULONG64 Information;
    ULONG64 Offset;
    ULONG64 Buffer;
    ULONG64 Length;
    ULONG64 ShareAccess;
    ULONG Flags;               /* KSIM_FILE_*; comes back with bit 8 set for a directory */
    ULONG NameLength;
    ULONG64 Name;
} KSIM_FILE_REQUEST;
STATIC_ASSERT(sizeof(KSIM_FILE_REQUEST) == 80);

/* The body of a file object (ob.c gives a file 0x40 bytes). */
typedef struct _KSIM_FILE {
    ULONG HostFile;            /* 0: a file object with no host file behind it */
    ULONG Flags;
} KSIM_FILE, *PKSIM_FILE;

typedef VOID (NTAPI *PIO_APC_ROUTINE)(PVOID ApcContext, PIO_STATUS_BLOCK IoStatusBlock, ULONG Reserved);

static NTSTATUS IopHostRequest(KSIM_FILE_REQUEST *Request)
{
    Request->Status = STATUS_OBJECT_PATH_NOT_FOUND;    /* no machine service: no drive */
    HalSimControl(KSIM_CONTROL_FILE, (ULONG64)Request, 0);
    return Request->Status;
}

static VOID IopRequirePassive(PVOID Routine)
{
    KIRQL irql = KeGetCurrentIrql();
    if (irql != PASSIVE_LEVEL)
        KeBugCheckEx(IRQL_NOT_LESS_OR_EQUAL, (ULONG_PTR)Routine, irql, 8, (ULONG_PTR)Routine);
}

static BOOLEAN IopHasPrefix(PCUNICODE_STRING Name, const char *Prefix, BOOLEAN Whole)
{
    USHORT n = (USHORT)strlen(Prefix), i;
    if (Name->Length / 2 < n)
        return FALSE;
    for (i = 0; i < n; i++) {
        WCHAR c = Name->Buffer[i];
        if ((c >= 'a' && c <= 'z' ? c - 32 : c) != (WCHAR)(Prefix[i] >= 'a' && Prefix[i] <= 'z' ? Prefix[i] - 32 : Prefix[i]))
            return FALSE;
    }
    return !Whole || Name->Length / 2 == n || Name->Buffer[n] == '\\';
}

/* Names of the drive the host directory plays. */
static BOOLEAN IopIsDriveName(PCUNICODE_STRING Name)
{
    return IopHasPrefix(Name, "\\??\\", FALSE) || IopHasPrefix(Name, "\\DosDevices\\", FALSE)
        || IopHasPrefix(Name, "\\GLOBAL??\\", FALSE) || IopHasPrefix(Name, "\\SystemRoot", TRUE);
}

NTSTATUS NTAPI ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
    PIO_STATUS_BLOCK IoStatusBlock, PLARGE_INTEGER AllocationSize, ULONG FileAttributes, ULONG ShareAccess,
    ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer, ULONG EaLength)
{
    KSIM_FILE_REQUEST request;
    POBJECT_HEADER h;
    PKSIM_FILE file;
    PUNICODE_STRING name;
    ACCESS_MASK access = ObpMapGeneric(ObTypeFile, DesiredAccess);
    ULONG sync = CreateOptions & (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT);
    NTSTATUS status;
    (void)AllocationSize; (void)FileAttributes; (void)EaBuffer; (void)EaLength;

    IopRequirePassive((PVOID)ZwCreateFile);
    if (!FileHandle || !IoStatusBlock || !ObjectAttributes || !ObjectAttributes->ObjectName)
        return STATUS_INVALID_PARAMETER;
    *FileHandle = NULL;
    name = ObjectAttributes->ObjectName;
    if (!IopIsDriveName(name)) {
        BOOLEAN created = FALSE;
        status = ObpOpen(ObTypeFile, ObjectAttributes, DesiredAccess, FileHandle, &created);
        IoStatusBlock->Status = status;
        IoStatusBlock->Information = created ? 2 : 1;       /* FILE_CREATED, FILE_OPENED */
        return status;
    }
    if (CreateDisposition > FILE_MAXIMUM_DISPOSITION || sync == (FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT)
        || (sync && !(access & SYNCHRONIZE)) || ObjectAttributes->RootDirectory
        || (CreateOptions & (FILE_DIRECTORY_FILE | FILE_NON_DIRECTORY_FILE))
               == (FILE_DIRECTORY_FILE | FILE_NON_DIRECTORY_FILE))
        return STATUS_INVALID_PARAMETER;

    memset(&request, 0, sizeof(request));
    request.Operation = KSIM_FILE_OPEN;
    request.Disposition = CreateDisposition;
    request.Options = CreateOptions;
    request.Access = access;
    request.ShareAccess = ShareAccess;
    request.Flags = sync ? KSIM_FILE_SYNCHRONOUS : 0;
    request.NameLength = name->Length;
    request.Name = (ULONG64)name->Buffer;
    status = IopHostRequest(&request);
    IoStatusBlock->Status = status;
    IoStatusBlock->Information = NT_SUCCESS(status) ? request.Information : 0;
    if (!NT_SUCCESS(status))
        return status;

    h = ObpCreate(ObTypeFile, NULL);
    if (!h) {
        request.Operation = KSIM_FILE_CLOSE;
        IopHostRequest(&request);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    file = OBP_BODY(h);
    file->HostFile = request.HostFile;
    file->Flags = request.Flags;
    /* The handle takes over the creation reference; a failure drops it and closes. */
    h->PointerCount--;
    status = ObpInsertObjectHandle(file, access, ObjectAttributes->Attributes, FileHandle);
    if (!NT_SUCCESS(status))
        IoStatusBlock->Status = status;
    return status;
}

NTSTATUS NTAPI ZwOpenFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess, POBJECT_ATTRIBUTES ObjectAttributes,
    PIO_STATUS_BLOCK IoStatusBlock, ULONG ShareAccess, ULONG OpenOptions)
{
    return ZwCreateFile(FileHandle, DesiredAccess, ObjectAttributes, IoStatusBlock, NULL, 0, ShareAccess,
                        FILE_OPEN, OpenOptions, NULL, 0);
}

VOID IopDeleteFile(PVOID File)
{
    PKSIM_FILE file = File;
    KSIM_FILE_REQUEST request;
    if (!file->HostFile)
        return;
    memset(&request, 0, sizeof(request));
    request.Operation = KSIM_FILE_CLOSE;
    request.HostFile = file->HostFile;
    IopHostRequest(&request);
    file->HostFile = 0;
}

/* The host file behind a kernel-mode caller's handle, or the failure status. */
static NTSTATUS IopFileOf(HANDLE Handle, PKSIM_FILE *File)
{
    POBJECT_HEADER h = ObpLookupHandle(Handle, KernelMode, NULL);
    if (!h)
        return STATUS_INVALID_HANDLE;
    if (OBP_TYPE(h) != ObTypeFile)
        return STATUS_OBJECT_TYPE_MISMATCH;
    *File = OBP_BODY(h);
    return (*File)->HostFile ? STATUS_SUCCESS : STATUS_INVALID_DEVICE_REQUEST;
}

static NTSTATUS IopTransfer(ULONG Operation, HANDLE FileHandle, HANDLE Event, PIO_STATUS_BLOCK IoStatusBlock,
                            PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset)
{
    KSIM_FILE_REQUEST request;
    PKSIM_FILE file;
    PVOID event = NULL;
    NTSTATUS status = IopFileOf(FileHandle, &file);

    if (!NT_SUCCESS(status))
        return status;
    if (!IoStatusBlock || (Length && !Buffer))
        return STATUS_INVALID_PARAMETER;
    if (Event) {
        status = ObReferenceObjectByHandle(Event, 0x0002, ExEventObjectType, KernelMode, &event, NULL);
        if (!NT_SUCCESS(status))
            return status;
        KeClearEvent(event);
    }
    memset(&request, 0, sizeof(request));
    request.Operation = Operation;
    request.HostFile = file->HostFile;
    request.Buffer = (ULONG64)Buffer;
    request.Length = Length;
    request.Flags = file->Flags & KSIM_FILE_SYNCHRONOUS;
    if (ByteOffset) {
        request.Flags |= KSIM_FILE_OFFSET_GIVEN;
        request.Offset = (ULONG64)ByteOffset->QuadPart;
    }
    status = IopHostRequest(&request);
    IoStatusBlock->Status = status;
    IoStatusBlock->Information = NT_SUCCESS(status) ? request.Information : 0;
    if (event) {
        KeSetEvent(event, 0, FALSE);
        ObDereferenceObject(event);
    }
    return status;
}

NTSTATUS NTAPI ZwReadFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
    PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset, PULONG Key)
{
    (void)ApcRoutine; (void)ApcContext; (void)Key;
    IopRequirePassive((PVOID)ZwReadFile);
    return IopTransfer(KSIM_FILE_READ, FileHandle, Event, IoStatusBlock, Buffer, Length, ByteOffset);
}

NTSTATUS NTAPI ZwWriteFile(HANDLE FileHandle, HANDLE Event, PIO_APC_ROUTINE ApcRoutine, PVOID ApcContext,
    PIO_STATUS_BLOCK IoStatusBlock, PVOID Buffer, ULONG Length, PLARGE_INTEGER ByteOffset, PULONG Key)
{
    (void)ApcRoutine; (void)ApcContext; (void)Key;
    IopRequirePassive((PVOID)ZwWriteFile);
    return IopTransfer(KSIM_FILE_WRITE, FileHandle, Event, IoStatusBlock, Buffer, Length, ByteOffset);
}

/* A query (Length bytes into FileInformation) or a set (the LARGE_INTEGER at
 * FileInformation) of one information class of a host file, the class and length
 * already checked by the caller. */
static NTSTATUS IopFileInformation(ULONG Operation, HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock,
    PVOID FileInformation, ULONG Length, ULONG FileInformationClass)
{
    KSIM_FILE_REQUEST request;
    PKSIM_FILE file;
    NTSTATUS status = IopFileOf(FileHandle, &file);

    if (!NT_SUCCESS(status))
        return status;
    if (!IoStatusBlock || !FileInformation)
        return STATUS_INVALID_PARAMETER;
    memset(&request, 0, sizeof(request));
    request.Operation = Operation;
    request.HostFile = file->HostFile;
    request.Disposition = FileInformationClass;
    if (Operation == KSIM_FILE_SET) {
        request.Offset = (ULONG64)((PLARGE_INTEGER)FileInformation)->QuadPart;
    } else {
        request.Buffer = (ULONG64)FileInformation;
        request.Length = Length;
    }
    status = IopHostRequest(&request);
    IoStatusBlock->Status = status;
    IoStatusBlock->Information = NT_SUCCESS(status) ? request.Information : 0;
    return status;
}

NTSTATUS NTAPI ZwQueryInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock, PVOID FileInformation,
    ULONG Length, ULONG FileInformationClass)
{
    ULONG needed;

    IopRequirePassive((PVOID)ZwQueryInformationFile);
    if (FileInformationClass == FileStandardInformation)
        needed = 24;
    else if (FileInformationClass == FilePositionInformation)
        needed = 8;
    else
        return STATUS_INVALID_INFO_CLASS;
    if (Length < needed)
        return STATUS_INFO_LENGTH_MISMATCH;
    return IopFileInformation(KSIM_FILE_QUERY, FileHandle, IoStatusBlock, FileInformation, needed,
                              FileInformationClass);
}

/* FilePositionInformation (the position a synchronous handle reads and writes at next)
 * and FileEndOfFileInformation (truncates or extends; needs FILE_WRITE_DATA). */
NTSTATUS NTAPI ZwSetInformationFile(HANDLE FileHandle, PIO_STATUS_BLOCK IoStatusBlock, PVOID FileInformation,
    ULONG Length, ULONG FileInformationClass)
{
    IopRequirePassive((PVOID)ZwSetInformationFile);
    if (FileInformationClass != FilePositionInformation && FileInformationClass != FileEndOfFileInformation)
        return STATUS_INVALID_INFO_CLASS;
    if (Length < sizeof(LARGE_INTEGER))
        return STATUS_INFO_LENGTH_MISMATCH;
    return IopFileInformation(KSIM_FILE_SET, FileHandle, IoStatusBlock, FileInformation, Length,
                              FileInformationClass);
}
