/*
 * iomgr2.c - the I/O manager as a user-mode program meets it: symbolic links, file
 * objects, and the IRPs that CreateFile, DeviceIoControl, ReadFile, WriteFile and
 * CloseHandle make, with buffers in user space handled per transfer method.
 *
 * The machine posts one request at a time in KiSimIoRequest (userio.py) and enters
 * KiSimIoEntry at PASSIVE_LEVEL, like an interrupt that saves every volatile register;
 * the request is carried out on the spot and its result written back, so a debugger
 * stopped in the driver's dispatch routine sees the kernel's I/O path on the stack.
 *
 * Buffers (the documented I/O manager behaviour):
 * - METHOD_BUFFERED and buffered read/write: SystemBuffer from the pool, sized for the
 *   larger of input and output, the input copied in; on completion Information bytes
 *   are copied back to the caller's output buffer.
 * - METHOD_IN_DIRECT / METHOD_OUT_DIRECT: input through SystemBuffer, the output buffer
 *   described by a locked MDL (Irp->MdlAddress); direct read/write likewise.
 * - METHOD_NEITHER: Type3InputBuffer and Irp->UserBuffer are the caller's addresses.
 * Requests go to the top of the named device's stack (the last device attached to it).
 * An IRP the driver leaves pending is finished when it is completed; the request then
 * reports STATUS_PENDING and its final status later (KiSimIoRequest.Done).
 */
#include "ksimrt.h"

#define KSIM_IO_CREATE  1
#define KSIM_IO_IOCTL   2
#define KSIM_IO_READ    3
#define KSIM_IO_WRITE   4
#define KSIM_IO_CLOSE   5
#define KSIM_IO_MAX_FILES 16
#define KSIM_MAX_LINKS 32

#define IRP_MJ_READ     0x03
#define IRP_MJ_WRITE    0x04
#define IRP_MJ_CLEANUP  0x12
#define DO_BUFFERED_IO  0x00000004
#define DO_DIRECT_IO    0x00000010
#define IRP_BUFFERED_IO 0x00000010
#define IRP_DEALLOCATE_BUFFER 0x00000020
#define IRP_INPUT_OPERATION 0x00000040
#define FILE_OBJECT_SIZE 0xD8
#define TAG_FILE 'eliF'
#define TAG_LINK 'kniL'
#define TAG_SYSBUF 'fBoI'

typedef struct _KSIM_IO_REQUEST {
    ULONG Sequence;            /* the machine bumps it to post a request */
    ULONG Done;                /* the kernel writes Sequence here when the request ends */
    ULONG Operation;           /* KSIM_IO_* */
    ULONG File;                /* index returned by create, used by the others */
    ULONG IoControlCode;
    ULONG InputLength;
    ULONG OutputLength;
    NTSTATUS Status;
    ULONG64 Information;
    ULONG64 InputBuffer;       /* caller (user-space) addresses */
    ULONG64 OutputBuffer;
    WCHAR Name[128];           /* create: \\.\Name, \??\Name, \DosDevices\Name or \Device\Name */
} KSIM_IO_REQUEST;

KSIM_IO_REQUEST KiSimIoRequest;

typedef struct _KSIM_LINK { UNICODE_STRING Link, Target; } KSIM_LINK;
static KSIM_LINK IopLinks[KSIM_MAX_LINKS];

typedef struct _KSIM_PENDING_IO {
    PIRP Irp;
    KEVENT Event;
    IO_STATUS_BLOCK Iosb;
    ULONG Sequence;
    ULONG Method;               /* how to finish: 0 buffered, 1 direct, 3 neither */
    ULONG64 OutputBuffer;
    ULONG OutputLength;
} KSIM_PENDING_IO;

static PVOID IopFiles[KSIM_IO_MAX_FILES];
static KSIM_PENDING_IO IopPending;

PDEVICE_OBJECT IopFindDevice(PCUNICODE_STRING Name);
PDEVICE_OBJECT NTAPI IoGetAttachedDevice(PDEVICE_OBJECT DeviceObject);
VOID NTAPI KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);
PIRP NTAPI IoAllocateIrp(CCHAR StackSize, BOOLEAN ChargeQuota);
VOID NTAPI IoFreeIrp(PIRP Irp);
NTSTATUS NTAPI IofCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp);
PMDL NTAPI IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                         PIRP Irp);
VOID NTAPI IoFreeMdl(PMDL Mdl);
VOID NTAPI MmProbeAndLockPages(PMDL Mdl, KPROCESSOR_MODE AccessMode, ULONG Operation);
VOID NTAPI MmUnlockPages(PMDL Mdl);

#define FO_DEVICE(f) (*(PDEVICE_OBJECT *)((PUCHAR)(f) + 0x08))

/* ---- Symbolic links ---- */

static NTSTATUS IopCopyString(PUNICODE_STRING Dest, PCUNICODE_STRING Source)
{
    Dest->Buffer = ExAllocatePoolWithTag(PagedPool, Source->Length + 2u, TAG_LINK);
    if (!Dest->Buffer)
        return STATUS_INSUFFICIENT_RESOURCES;
    memcpy(Dest->Buffer, Source->Buffer, Source->Length);
    Dest->Buffer[Source->Length / 2] = 0;
    Dest->Length = Source->Length;
    Dest->MaximumLength = (USHORT)(Source->Length + 2);
    return STATUS_SUCCESS;
}

static KSIM_LINK *IopFindLink(PCUNICODE_STRING Link)
{
    ULONG i;
    for (i = 0; i < KSIM_MAX_LINKS; i++)
        if (IopLinks[i].Link.Buffer && RtlCompareUnicodeString(&IopLinks[i].Link, Link, TRUE) == 0)
            return &IopLinks[i];
    return NULL;
}

NTSTATUS NTAPI IoCreateSymbolicLink(PUNICODE_STRING Link, PUNICODE_STRING Target)
{
    ULONG i;
    if (IopFindLink(Link))
        return STATUS_OBJECT_NAME_COLLISION;
    for (i = 0; i < KSIM_MAX_LINKS; i++) {
        if (IopLinks[i].Link.Buffer)
            continue;
        if (!NT_SUCCESS(IopCopyString(&IopLinks[i].Link, Link)))
            return STATUS_INSUFFICIENT_RESOURCES;
        if (!NT_SUCCESS(IopCopyString(&IopLinks[i].Target, Target))) {
            ExFreePoolWithTag(IopLinks[i].Link.Buffer, TAG_LINK);
            IopLinks[i].Link.Buffer = NULL;
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        return STATUS_SUCCESS;
    }
    return STATUS_INSUFFICIENT_RESOURCES;
}

NTSTATUS NTAPI IoCreateUnprotectedSymbolicLink(PUNICODE_STRING Link, PUNICODE_STRING Target)
{
    return IoCreateSymbolicLink(Link, Target);
}

NTSTATUS NTAPI IoDeleteSymbolicLink(PUNICODE_STRING Link)
{
    KSIM_LINK *l = IopFindLink(Link);
    if (!l)
        return STATUS_OBJECT_NAME_NOT_FOUND;
    ExFreePoolWithTag(l->Link.Buffer, TAG_LINK);
    ExFreePoolWithTag(l->Target.Buffer, TAG_LINK);
    memset(l, 0, sizeof(*l));
    return STATUS_SUCCESS;
}

/* \\.\X and \??\X name \DosDevices\X; a link is followed once, to a device name. */
static PDEVICE_OBJECT IopOpenName(PWSTR Name)
{
    static const WCHAR dos[] = { '\\', 'D', 'o', 's', 'D', 'e', 'v', 'i', 'c', 'e', 's', '\\', 0 };
    WCHAR buffer[160];
    UNICODE_STRING name;
    KSIM_LINK *link;
    ULONG i = 0, n;

    if ((Name[0] == '\\' && (Name[1] == '\\' || Name[1] == '?') && (Name[2] == '.' || Name[2] == '?')
         && Name[3] == '\\')) {
        for (; dos[i]; i++)
            buffer[i] = dos[i];
        Name += 4;
    }
    for (n = 0; Name[n] && i < 159; n++)
        buffer[i++] = Name[n];
    buffer[i] = 0;
    RtlInitUnicodeString(&name, buffer);
    link = IopFindLink(&name);
    return IopFindDevice(link ? &link->Target : &name);
}

/* ---- IRPs ---- */

static PIRP IopBuildIrp(PVOID File, UCHAR Major)
{
    PDEVICE_OBJECT device = IoGetAttachedDevice(FO_DEVICE(File));
    PIRP irp = IoAllocateIrp(device->StackSize, FALSE);
    PIO_STACK_LOCATION sp;
    if (!irp)
        return NULL;
    irp->RequestorMode = UserMode;
    irp->OriginalFileObject = File;
    irp->IoStatus.Status = STATUS_SUCCESS;
    sp = irp->CurrentStackLocation - 1;
    sp->MajorFunction = Major;
    sp->FileObject = File;
    return irp;
}

/* Copies back, unlocks and frees what the I/O manager set up for the IRP.  Done is
 * written last, and only when the whole request is over (Signal): the machine posts
 * the next request as soon as it sees it. */
static VOID IopFinish(KSIM_PENDING_IO *Io, BOOLEAN Signal)
{
    PIRP irp = Io->Irp;
    ULONG64 info = Io->Iosb.Information;

    if (Io->Method == 0 && irp->AssociatedIrp.SystemBuffer) {
        if (NT_SUCCESS(Io->Iosb.Status) && Io->OutputBuffer && (irp->Flags & IRP_INPUT_OPERATION))
            memcpy((PVOID)Io->OutputBuffer, irp->AssociatedIrp.SystemBuffer,
                   info < Io->OutputLength ? info : Io->OutputLength);
        ExFreePoolWithTag(irp->AssociatedIrp.SystemBuffer, TAG_SYSBUF);
    } else if (Io->Method == 1) {
        if (irp->AssociatedIrp.SystemBuffer)
            ExFreePoolWithTag(irp->AssociatedIrp.SystemBuffer, TAG_SYSBUF);
        if (irp->MdlAddress) {
            MmUnlockPages(irp->MdlAddress);
            IoFreeMdl(irp->MdlAddress);
        }
    }
    KiSimIoRequest.Status = Io->Iosb.Status;
    KiSimIoRequest.Information = info;
    IoFreeIrp(irp);
    Io->Irp = NULL;
    if (Signal)
        KiSimIoRequest.Done = Io->Sequence;
}

static NTSTATUS IopCall(PVOID File, PIRP Irp, ULONG Method, ULONG64 Output, ULONG OutputLength)
{
    NTSTATUS status;
    KSIM_PENDING_IO *io = &IopPending;

    io->Irp = Irp;
    io->Sequence = KiSimIoRequest.Sequence;
    io->Method = Method;
    io->OutputBuffer = Output;
    io->OutputLength = OutputLength;
    io->Iosb.Status = STATUS_PENDING;
    io->Iosb.Information = 0;
    KeInitializeEvent(&io->Event, NotificationEvent, FALSE);
    Irp->UserIosb = &io->Iosb;
    Irp->UserEvent = &io->Event;
    status = IofCallDriver(IoGetAttachedDevice(FO_DEVICE(File)), Irp);
    if (status == STATUS_PENDING && !io->Event.Header.SignalState) {
        KiSimIoRequest.Status = STATUS_PENDING;
        return STATUS_PENDING;     /* finished by IopCheckPending once completed */
    }
    if (io->Iosb.Status == STATUS_PENDING)
        io->Iosb.Status = status;
    IopFinish(io, FALSE);
    return KiSimIoRequest.Status;
}

static NTSTATUS IopCreate(VOID)
{
    PDEVICE_OBJECT device = IopOpenName(KiSimIoRequest.Name);
    PVOID file;
    PIRP irp;
    ULONG slot;
    NTSTATUS status;

    if (!device)
        return STATUS_OBJECT_NAME_NOT_FOUND;
    for (slot = 0; slot < KSIM_IO_MAX_FILES && IopFiles[slot]; slot++)
        ;
    if (slot == KSIM_IO_MAX_FILES)
        return STATUS_INSUFFICIENT_RESOURCES;
    file = ExAllocatePoolWithTag(NonPagedPool, FILE_OBJECT_SIZE, TAG_FILE);
    if (!file)
        return STATUS_INSUFFICIENT_RESOURCES;
    memset(file, 0, FILE_OBJECT_SIZE);
    *(CSHORT *)file = 5;                                  /* IO_TYPE_FILE */
    *((CSHORT *)file + 1) = FILE_OBJECT_SIZE;
    FO_DEVICE(file) = device;
    irp = IopBuildIrp(file, IRP_MJ_CREATE);
    if (!irp) {
        ExFreePoolWithTag(file, TAG_FILE);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    status = IopCall(file, irp, 3, 0, 0);
    if (NT_SUCCESS(status) && status != STATUS_PENDING) {
        IopFiles[slot] = file;
        KiSimIoRequest.File = slot + 1;
    } else if (status != STATUS_PENDING) {
        ExFreePoolWithTag(file, TAG_FILE);
    }
    return status;
}

static NTSTATUS IopTransfer(PVOID File)
{
    ULONG op = KiSimIoRequest.Operation, in = KiSimIoRequest.InputLength, out = KiSimIoRequest.OutputLength;
    ULONG code = KiSimIoRequest.IoControlCode, method;
    PDEVICE_OBJECT device = FO_DEVICE(File);
    PIO_STACK_LOCATION sp;
    PIRP irp = IopBuildIrp(File, op == KSIM_IO_IOCTL ? IRP_MJ_DEVICE_CONTROL
                                                     : op == KSIM_IO_READ ? IRP_MJ_READ : IRP_MJ_WRITE);
    PVOID user_in = (PVOID)KiSimIoRequest.InputBuffer, user_out = (PVOID)KiSimIoRequest.OutputBuffer;

    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    sp = irp->CurrentStackLocation - 1;
    if (op == KSIM_IO_IOCTL) {
        method = code & 3;
        sp->Parameters.DeviceIoControl.IoControlCode = code;
        sp->Parameters.DeviceIoControl.InputBufferLength = in;
        sp->Parameters.DeviceIoControl.OutputBufferLength = out;
    } else {
        /* Read and write: the buffer is the output (read) or the input (write). */
        ULONG length = op == KSIM_IO_READ ? out : in;
        method = (device->Flags & DO_BUFFERED_IO) ? 0 : (device->Flags & DO_DIRECT_IO) ? 1 : 3;
        sp->Parameters.Others.Argument1 = (PVOID)(ULONG_PTR)length;     /* Read.Length */
        if (op == KSIM_IO_WRITE) {
            user_out = user_in;
            out = in;
            in = method == 1 ? 0 : in;
        }
    }
    if (method == 0) {
        ULONG size = in > out ? in : out;
        if (size) {
            irp->AssociatedIrp.SystemBuffer = ExAllocatePoolWithTag(NonPagedPool, size, TAG_SYSBUF);
            if (!irp->AssociatedIrp.SystemBuffer) {
                IoFreeIrp(irp);
                return STATUS_INSUFFICIENT_RESOURCES;
            }
            memcpy(irp->AssociatedIrp.SystemBuffer, op == KSIM_IO_WRITE ? user_out : user_in, in);
            irp->Flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER
                        | ((out && op != KSIM_IO_WRITE) ? IRP_INPUT_OPERATION : 0);
        }
    } else if (method == 1 || method == 2) {
        method = 1;
        if (op == KSIM_IO_IOCTL && in) {
            irp->AssociatedIrp.SystemBuffer = ExAllocatePoolWithTag(NonPagedPool, in, TAG_SYSBUF);
            if (!irp->AssociatedIrp.SystemBuffer) {
                IoFreeIrp(irp);
                return STATUS_INSUFFICIENT_RESOURCES;
            }
            memcpy(irp->AssociatedIrp.SystemBuffer, user_in, in);
        }
        if (out) {
            PMDL mdl = IoAllocateMdl(user_out, out, FALSE, FALSE, irp);
            if (!mdl) {
                if (irp->AssociatedIrp.SystemBuffer)
                    ExFreePoolWithTag(irp->AssociatedIrp.SystemBuffer, TAG_SYSBUF);
                IoFreeIrp(irp);
                return STATUS_INSUFFICIENT_RESOURCES;
            }
            MmProbeAndLockPages(mdl, UserMode, 1);
        }
    } else {
        sp->Parameters.DeviceIoControl.Type3InputBuffer = user_in;
        irp->UserBuffer = user_out;
    }
    return IopCall(File, irp, method, (ULONG64)user_out, out);
}

static NTSTATUS IopClose(ULONG Slot)
{
    PVOID file = IopFiles[Slot];
    NTSTATUS status = IopCall(file, IopBuildIrp(file, IRP_MJ_CLEANUP), 3, 0, 0);
    if (status != STATUS_PENDING)
        status = IopCall(file, IopBuildIrp(file, IRP_MJ_CLOSE), 3, 0, 0);
    IopFiles[Slot] = NULL;
    ExFreePoolWithTag(file, TAG_FILE);
    return status;
}

/* A pending IRP that its driver has completed since: finish it now. */
static VOID IopCheckPending(VOID)
{
    if (IopPending.Irp && IopPending.Event.Header.SignalState)
        IopFinish(&IopPending, TRUE);
}

VOID KiSimServiceIo(VOID)
{
    ULONG slot = KiSimIoRequest.File - 1;
    NTSTATUS status;

    IopCheckPending();
    if (KiSimIoRequest.Done == KiSimIoRequest.Sequence || IopPending.Irp)
        return;
    KiSimIoRequest.Information = 0;
    if (KiSimIoRequest.Operation == KSIM_IO_CREATE)
        status = IopCreate();
    else if (slot >= KSIM_IO_MAX_FILES || !IopFiles[slot])
        status = STATUS_INVALID_HANDLE;
    else if (KiSimIoRequest.Operation == KSIM_IO_CLOSE)
        status = IopClose(slot);
    else if (KiSimIoRequest.Operation >= KSIM_IO_IOCTL && KiSimIoRequest.Operation <= KSIM_IO_WRITE)
        status = IopTransfer(IopFiles[slot]);
    else
        status = STATUS_INVALID_PARAMETER;
    if (IopPending.Irp)
        return;
    KiSimIoRequest.Status = status;
    KiSimIoRequest.Done = KiSimIoRequest.Sequence;
}

/* Where the machine enters to carry out a request of the user-mode program. */
KI_INTERRUPT_ENTRY(KiSimIoEntry, PspServiceUserIo);
