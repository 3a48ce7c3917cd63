/*
 * filelog.sys - a driver that keeps a log file with the Zw file routines, as drivers
 * that log do: create and overwrite, synchronous writes at the current position,
 * appending through FILE_APPEND_DATA, reading back, the standard and position
 * information, the create dispositions, and the names that must fail.  Each case
 * prints one "file:" line with the statuses (hex) and Information values it got.
 * \Device\KsimFileLog takes IOCTL_FILELOG_LINE (the input text appended to a log whose
 * kernel handle DriverEntry opened, from the caller's process) and
 * IOCTL_FILELOG_AT_DISPATCH (ZwCreateFile at DISPATCH_LEVEL, which is not allowed).
 */
#include <ntddk.h>

#define IOCTL_FILELOG_LINE        CTL_CODE(0x8000, 0xA00, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_FILELOG_AT_DISPATCH CTL_CODE(0x8000, 0xA01, METHOD_BUFFERED, FILE_ANY_ACCESS)

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD FileUnload;
_Dispatch_type_(IRP_MJ_CREATE) _Dispatch_type_(IRP_MJ_CLOSE) DRIVER_DISPATCH FileCreateClose;
_Dispatch_type_(IRP_MJ_DEVICE_CONTROL) DRIVER_DISPATCH FileControl;

static HANDLE Log;

static NTSTATUS Open(PCWSTR Path, ACCESS_MASK Access, ULONG Disposition, ULONG Options, ULONG Share,
                     PHANDLE Handle, PULONG_PTR Information)
{
    UNICODE_STRING name;
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK iosb;
    NTSTATUS status;

    RtlInitUnicodeString(&name, Path);
    InitializeObjectAttributes(&attributes, &name, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    iosb.Information = 0xEE;
    status = ZwCreateFile(Handle, Access, &attributes, &iosb, NULL, FILE_ATTRIBUTE_NORMAL, Share, Disposition,
                          Options, NULL, 0);
    *Information = iosb.Information;
    return status;
}

static NTSTATUS Write(HANDLE Handle, PCSTR Text, PLARGE_INTEGER Offset, PULONG_PTR Written)
{
    IO_STATUS_BLOCK iosb;
    NTSTATUS status;
    iosb.Information = 0;
    status = ZwWriteFile(Handle, NULL, NULL, NULL, &iosb, (PVOID)Text, (ULONG)strlen(Text), Offset, NULL);
    *Written = iosb.Information;
    return status;
}

static VOID Sizes(HANDLE Handle, PLONGLONG End, PLONGLONG Position, PNTSTATUS Status)
{
    FILE_STANDARD_INFORMATION standard;
    FILE_POSITION_INFORMATION position;
    IO_STATUS_BLOCK iosb;
    *Status = ZwQueryInformationFile(Handle, &iosb, &standard, sizeof(standard), FileStandardInformation);
    *End = NT_SUCCESS(*Status) ? standard.EndOfFile.QuadPart : -1;
    if (NT_SUCCESS(*Status))
        *Status = ZwQueryInformationFile(Handle, &iosb, &position, sizeof(position), FilePositionInformation);
    *Position = NT_SUCCESS(*Status) ? position.CurrentByteOffset.QuadPart : -1;
}

#define SYNC_WRITE (FILE_GENERIC_WRITE | SYNCHRONIZE)
#define SYNC_OPTIONS (FILE_SYNCHRONOUS_IO_NONALERT | FILE_NON_DIRECTORY_FILE)

static VOID CreateAndWrite(VOID)
{
    HANDLE h;
    ULONG_PTR info = 0, w1 = 0, w2 = 0;
    NTSTATUS s, a, b, q = STATUS_UNSUCCESSFUL;
    LONGLONG end = -1, pos = -1;

    s = Open(L"\\??\\C:\\Logs\\filelog.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, FILE_SHARE_READ, &h, &info);
    if (NT_SUCCESS(s)) {
        a = Write(h, "first line\r\n", NULL, &w1);
        b = Write(h, "second\r\n", NULL, &w2);
        Sizes(h, &end, &pos, &q);
        ZwClose(h);
    } else {
        a = b = s;
    }
    DbgPrint("file: create status=%x info=%u writes=%x,%x bytes=%u,%u query=%x end=%u pos=%u\n", s, (ULONG)info,
             a, b, (ULONG)w1, (ULONG)w2, q, (ULONG)end, (ULONG)pos);
}

static VOID Append(VOID)
{
    HANDLE h;
    ULONG_PTR info = 0, w = 0;
    LARGE_INTEGER zero;
    NTSTATUS s, a = STATUS_UNSUCCESSFUL, q = STATUS_UNSUCCESSFUL;
    LONGLONG end = -1, pos = -1;

    zero.QuadPart = 0;
    s = Open(L"\\DosDevices\\c:\\logs\\FILELOG.TXT", FILE_APPEND_DATA | SYNCHRONIZE, FILE_OPEN_IF, SYNC_OPTIONS,
             FILE_SHARE_READ, &h, &info);
    if (NT_SUCCESS(s)) {
        a = Write(h, "appended\r\n", &zero, &w);
        Sizes(h, &end, &pos, &q);
        ZwClose(h);
    }
    DbgPrint("file: append status=%x info=%u write=%x bytes=%u end=%u\n", s, (ULONG)info, a, (ULONG)w, (ULONG)end);
}

static VOID ReadBack(VOID)
{
    UNICODE_STRING name = RTL_CONSTANT_STRING(L"\\??\\C:\\Logs\\filelog.txt");
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK iosb;
    HANDLE h;
    CHAR buffer[64];
    NTSTATUS s, r = STATUS_UNSUCCESSFUL, again = STATUS_UNSUCCESSFUL, denied = STATUS_UNSUCCESSFUL;
    ULONG_PTR got = 0, w = 0;
    LARGE_INTEGER five;

    InitializeObjectAttributes(&attributes, &name, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL, NULL);
    s = ZwOpenFile(&h, FILE_GENERIC_READ, &attributes, &iosb, FILE_SHARE_READ, SYNC_OPTIONS);
    RtlZeroMemory(buffer, sizeof(buffer));
    if (NT_SUCCESS(s)) {
        r = ZwReadFile(h, NULL, NULL, NULL, &iosb, buffer, sizeof(buffer) - 1, NULL, NULL);
        got = iosb.Information;
        five.QuadPart = 5;
        again = ZwReadFile(h, NULL, NULL, NULL, &iosb, buffer + 40, 4, NULL, NULL);
        denied = Write(h, "x", &five, &w);
        ZwClose(h);
    }
    buffer[10] = 0;
    DbgPrint("file: read status=%x read=%x bytes=%u head=%s eof=%x write_on_read_handle=%x\n", s, r, (ULONG)got,
             buffer, again, denied);
}

static VOID Dispositions(VOID)
{
    HANDLE h;
    ULONG_PTR i1 = 0, i2 = 0, i3 = 0, i4 = 0;
    NTSTATUS collide, missing, nodir, over, super, create;

    collide = Open(L"\\??\\C:\\Logs\\filelog.txt", SYNC_WRITE, FILE_CREATE, SYNC_OPTIONS, 0, &h, &i1);
    missing = Open(L"\\??\\C:\\Logs\\absent.txt", SYNC_WRITE, FILE_OPEN, SYNC_OPTIONS, 0, &h, &i1);
    nodir = Open(L"\\??\\C:\\NoSuchDir\\x.txt", SYNC_WRITE, FILE_OPEN_IF, SYNC_OPTIONS, 0, &h, &i1);
    create = Open(L"\\??\\C:\\Logs\\other.txt", SYNC_WRITE, FILE_CREATE, SYNC_OPTIONS, 0, &h, &i2);
    if (NT_SUCCESS(create)) {
        Write(h, "12345", NULL, &i1);
        ZwClose(h);
    }
    over = Open(L"\\??\\C:\\Logs\\other.txt", SYNC_WRITE, FILE_OVERWRITE, SYNC_OPTIONS, 0, &h, &i3);
    if (NT_SUCCESS(over))
        ZwClose(h);
    super = Open(L"\\??\\C:\\Logs\\other.txt", SYNC_WRITE, FILE_SUPERSEDE, SYNC_OPTIONS, 0, &h, &i4);
    if (NT_SUCCESS(super))
        ZwClose(h);
    DbgPrint("file: dispositions collide=%x missing=%x nodir=%x create=%x,%u overwrite=%x,%u supersede=%x,%u\n",
             collide, missing, nodir, create, (ULONG)i2, over, (ULONG)i3, super, (ULONG)i4);
}

static VOID Rules(VOID)
{
    HANDLE h, h2, event;
    ULONG_PTR info, w = 0;
    LARGE_INTEGER at;
    NTSTATUS nosync, nooffset = STATUS_UNSUCCESSFUL, offset = STATUS_UNSUCCESSFUL, share, badclose, mismatch;
    NTSTATUS s;
    UNICODE_STRING ename = RTL_CONSTANT_STRING(L"\\BaseNamedObjects\\FileLogEvent");

    nosync = Open(L"\\??\\C:\\Logs\\rules.txt", FILE_GENERIC_WRITE & ~SYNCHRONIZE, FILE_OPEN_IF,
                  FILE_SYNCHRONOUS_IO_NONALERT, 0, &h, &info);
    s = Open(L"\\??\\C:\\Logs\\rules.txt", FILE_WRITE_DATA, FILE_OPEN_IF, FILE_NON_DIRECTORY_FILE, 0, &h, &info);
    if (NT_SUCCESS(s)) {
        nooffset = Write(h, "async", NULL, &w);
        at.QuadPart = 3;
        offset = Write(h, "abc", &at, &w);
        share = Open(L"\\??\\C:\\Logs\\rules.txt", FILE_WRITE_DATA, FILE_OPEN, 0, FILE_SHARE_WRITE, &h2, &info);
        if (NT_SUCCESS(share))
            ZwClose(h2);
        ZwClose(h);
        badclose = ZwClose(h);
    } else {
        share = badclose = s;
    }
    IoCreateNotificationEvent(&ename, &event);
    mismatch = Write(event, "x", NULL, &w);
    ZwClose(event);
    DbgPrint("file: rules sync_without_synchronize=%x open=%x no_offset=%x offset=%x sharing=%x closed_twice=%x "
             "not_a_file=%x\n", nosync, s, nooffset, offset, share, badclose, mismatch);
}

static VOID SetInformation(VOID)
{
    HANDLE h, ro;
    ULONG_PTR info, w = 0;
    IO_STATUS_BLOCK iosb;
    FILE_POSITION_INFORMATION position;
    FILE_END_OF_FILE_INFORMATION end;
    NTSTATUS s, seek = STATUS_UNSUCCESSFUL, cut = STATUS_UNSUCCESSFUL, denied = STATUS_UNSUCCESSFUL;
    NTSTATUS badclass = STATUS_UNSUCCESSFUL, short_ = STATUS_UNSUCCESSFUL, q = STATUS_UNSUCCESSFUL;
    LONGLONG size = -1, pos = -1;

    s = Open(L"\\??\\C:\\Logs\\setinfo.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, FILE_SHARE_READ, &h,
             &info);
    if (NT_SUCCESS(s)) {
        Write(h, "0123456789", NULL, &w);
        position.CurrentByteOffset.QuadPart = 2;
        seek = ZwSetInformationFile(h, &iosb, &position, sizeof(position), FilePositionInformation);
        Write(h, "ab", NULL, &w);
        end.EndOfFile.QuadPart = 4;
        cut = ZwSetInformationFile(h, &iosb, &end, sizeof(end), FileEndOfFileInformation);
        Sizes(h, &size, &pos, &q);
        badclass = ZwSetInformationFile(h, &iosb, &end, sizeof(end), FileBasicInformation);
        short_ = ZwSetInformationFile(h, &iosb, &end, 4, FileEndOfFileInformation);
        if (NT_SUCCESS(Open(L"\\??\\C:\\Logs\\setinfo.txt", FILE_GENERIC_READ, FILE_OPEN, SYNC_OPTIONS,
                            FILE_SHARE_READ | FILE_SHARE_WRITE, &ro, &info))) {
            denied = ZwSetInformationFile(ro, &iosb, &end, sizeof(end), FileEndOfFileInformation);
            ZwClose(ro);
        }
        ZwClose(h);
    }
    DbgPrint("file: setinfo status=%x seek=%x cut=%x end=%u pos=%u bad_class=%x short=%x read_only=%x\n", s, seek,
             cut, (ULONG)size, (ULONG)pos, badclass, short_, denied);
}

static VOID Names(VOID)
{
    HANDLE h;
    ULONG_PTR info, dinfo = 0;
    NTSTATUS dots, dots2, slash, link, drive, stream, dir, sysroot, w = STATUS_UNSUCCESSFUL;
    ULONG_PTR written = 0;

    dots = Open(L"\\??\\C:\\..\\escape.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
    dots2 = Open(L"\\??\\C:\\Logs\\..\\..\\escape.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
    slash = Open(L"\\??\\C:\\/tmp/escape.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
    link = Open(L"\\??\\C:\\Outside\\escape.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
    drive = Open(L"\\??\\D:\\escape.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
    stream = Open(L"\\??\\C:\\Logs\\a.txt:hidden", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
    dir = Open(L"\\SystemRoot\\KsimLogs", FILE_LIST_DIRECTORY | SYNCHRONIZE, FILE_OPEN_IF,
               FILE_DIRECTORY_FILE | FILE_SYNCHRONOUS_IO_NONALERT, 0, &h, &dinfo);
    if (NT_SUCCESS(dir))
        ZwClose(h);
    sysroot = Open(L"\\SystemRoot\\KsimLogs\\boot.log", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
    if (NT_SUCCESS(sysroot)) {
        w = Write(h, "booted\r\n", NULL, &written);
        ZwClose(h);
    }
    DbgPrint("file: names dots=%x dots2=%x slash=%x link=%x drive=%x stream=%x dir=%x,%u systemroot=%x write=%x\n",
             dots, dots2, slash, link, drive, stream, dir, (ULONG)dinfo, sysroot, w);
}

NTSTATUS FileCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    Irp->IoStatus.Status = STATUS_SUCCESS;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return STATUS_SUCCESS;
}

NTSTATUS FileControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG length = sp->Parameters.DeviceIoControl.InputBufferLength;
    PCHAR text = Irp->AssociatedIrp.SystemBuffer;
    ULONG_PTR written = 0, info;
    NTSTATUS status = STATUS_INVALID_DEVICE_REQUEST;
    HANDLE h;
    KIRQL old;

    UNREFERENCED_PARAMETER(DeviceObject);
    if (sp->Parameters.DeviceIoControl.IoControlCode == IOCTL_FILELOG_LINE && length && text) {
        text[length - 1] = 0;
        status = Write(Log, text, NULL, &written);
        DbgPrint("file: line status=%x bytes=%u pid=%u\n", status, (ULONG)written,
                 (ULONG)(ULONG_PTR)PsGetCurrentProcessId());
    } else if (sp->Parameters.DeviceIoControl.IoControlCode == IOCTL_FILELOG_AT_DISPATCH) {
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        status = Open(L"\\??\\C:\\Logs\\dispatch.txt", SYNC_WRITE, FILE_OVERWRITE_IF, SYNC_OPTIONS, 0, &h, &info);
        KeLowerIrql(old);
    }
    Irp->IoStatus.Status = status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return status;
}

VOID FileUnload(PDRIVER_OBJECT DriverObject)
{
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\KsimFileLog");
    if (Log)
        ZwClose(Log);
    IoDeleteSymbolicLink(&link);
    IoDeleteDevice(DriverObject->DeviceObject);
    DbgPrint("file: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNICODE_STRING device = RTL_CONSTANT_STRING(L"\\Device\\KsimFileLog");
    UNICODE_STRING link = RTL_CONSTANT_STRING(L"\\DosDevices\\KsimFileLog");
    PDEVICE_OBJECT dev;
    ULONG_PTR info;
    NTSTATUS status;

    UNREFERENCED_PARAMETER(RegistryPath);
    status = IoCreateDevice(DriverObject, 0, &device, FILE_DEVICE_UNKNOWN, 0, FALSE, &dev);
    if (!NT_SUCCESS(status))
        return status;
    IoCreateSymbolicLink(&link, &device);
    DriverObject->MajorFunction[IRP_MJ_CREATE] = FileCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = FileCreateClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = FileControl;
    DriverObject->DriverUnload = FileUnload;
    if (!NT_SUCCESS(Open(L"\\??\\C:\\Logs\\requests.log", FILE_APPEND_DATA | SYNCHRONIZE, FILE_OPEN_IF,
                         SYNC_OPTIONS, FILE_SHARE_READ, &Log, &info)))
        Log = NULL;
    CreateAndWrite();
    Append();
    ReadBack();
    Dispositions();
    Rules();
    SetInformation();
    Names();
    return STATUS_SUCCESS;
}
