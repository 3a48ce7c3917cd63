/*
 * iocomp.c - IRP completion and device stacks: IofCompleteRequest walking the stack
 * locations upward through completion routines, IoSetCompletionRoutineEx, attaching
 * and detaching devices (IoAttachDeviceToDeviceStack, IoAttachDevice, IoDetachDevice,
 * IoGetAttachedDevice, IoGetAttachedDeviceReference), and the IRPs the I/O manager
 * builds for a driver (IoBuildDeviceIoControlRequest, IoBuildSynchronousFsdRequest), and
 * IoGetDeviceObjectPointer.
 *
 * Completion, as the WDK documents it: each stack location from the current one up
 * is taken off in turn; its completion routine (set by the driver above with
 * IoSetCompletionRoutine, in the lower driver's location) is called when the status
 * matches InvokeOnSuccess / InvokeOnError, or Irp->Cancel matches InvokeOnCancel,
 * with the device of the driver that set it (NULL for the top one) and
 * Irp->PendingReturned set from the location's SL_PENDING_RETURNED; a routine
 * returning STATUS_MORE_PROCESSING_REQUIRED ends the walk and the IRP stays with its
 * driver.  A location without a routine passes a pending mark up by itself.  Past the
 * top location the I/O manager's part runs: the status goes to Irp->UserIosb and
 * Irp->UserEvent is set; an IRP built here also has its buffered output copied back,
 * its system buffer and MDLs freed, and is freed itself, as the documentation says
 * the I/O manager does with them.  Completion happens on the spot (no APC).  An IRP
 * completed with its cancel routine still set is bug check 0x48
 * (CANCEL_STATE_IN_COMPLETED_IRP: the IRP, the routine); one completed past its top
 * location, or that is no IRP, 0x44 (MULTIPLE_IRP_COMPLETE_REQUESTS).
 *
 * The simulated kernel has no object headers on device objects: referencing one
 * (IoGetAttachedDeviceReference, ObReferenceObject) counts in its ReferenceCount.
 *
 * Sources (facts only): the WDK documentation of IoCompleteRequest,
 * IoSetCompletionRoutine(Ex), IoMarkIrpPending, IoCallDriver, the routines above and
 * "Constraints on Completion Routines"; IO_STACK_LOCATION's Control bits in wdm.h.
 */
#include "iop.h"

#define MULTIPLE_IRP_COMPLETE_REQUESTS 0x00000044
#define CANCEL_STATE_IN_COMPLETED_IRP  0x00000048
#define KSIM_IRP_BUILT 0x80          /* AllocationFlags: the I/O manager frees it at completion */
#define TAG_COMPLETION 'pmCI'
#define TAG_BUILT_BUFFER 'fBoI'
#define IoReadAccess 0
#define IoWriteAccess 1

PMDL NTAPI IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer, BOOLEAN ChargeQuota,
                         PIRP Irp);
VOID NTAPI IoFreeMdl(PMDL Mdl);
VOID NTAPI MmProbeAndLockPages(PMDL Mdl, KPROCESSOR_MODE AccessMode, ULONG Operation);
VOID NTAPI MmUnlockPages(PMDL Mdl);
PVOID NTAPI KeGetCurrentThread(VOID);

/* ---- Completion ---- */

/* The I/O manager's part, once no driver holds the IRP any more. */
static VOID IopCompleteFinal(PIRP Irp)
{
    if (Irp->AllocationFlags & KSIM_IRP_BUILT) {
        PMDL mdl, next;
        if (Irp->Flags & IRP_BUFFERED_IO) {
            if ((Irp->Flags & IRP_INPUT_OPERATION) && NT_SUCCESS(Irp->IoStatus.Status) && Irp->UserBuffer)
                memcpy(Irp->UserBuffer, Irp->AssociatedIrp.SystemBuffer, Irp->IoStatus.Information);
            if (Irp->Flags & IRP_DEALLOCATE_BUFFER)
                ExFreePoolWithTag(Irp->AssociatedIrp.SystemBuffer, TAG_BUILT_BUFFER);
        }
        for (mdl = Irp->MdlAddress; mdl; mdl = next) {
            next = mdl->Next;
            MmUnlockPages(mdl);
            IoFreeMdl(mdl);
        }
        Irp->MdlAddress = NULL;
    }
    if (Irp->UserIosb)
        *Irp->UserIosb = Irp->IoStatus;
    if (Irp->UserEvent)
        KeSetEvent(Irp->UserEvent, 0, FALSE);
    if (Irp->AllocationFlags & KSIM_IRP_BUILT)
        IoFreeIrp(Irp);
}

VOID NTAPI IofCompleteRequest(PIRP Irp, CCHAR PriorityBoost)
{
    (void)PriorityBoost;
    if (Irp->Type != IO_TYPE_IRP || Irp->CurrentLocation > Irp->StackCount + 1)
        KeBugCheckEx(MULTIPLE_IRP_COMPLETE_REQUESTS, (ULONG_PTR)Irp, 0, 0, 0);
    /* A cancel routine left set: the IRP could be cancelled while it is being completed. */
    if (Irp->CancelRoutine)
        KeBugCheckEx(CANCEL_STATE_IN_COMPLETED_IRP, (ULONG_PTR)Irp, (ULONG_PTR)Irp->CancelRoutine, 0, 0);
    while (Irp->CurrentLocation <= Irp->StackCount) {
        PIO_STACK_LOCATION sp = Irp->CurrentStackLocation;
        PIO_COMPLETION_ROUTINE routine = (PIO_COMPLETION_ROUTINE)sp->CompletionRoutine;
        PVOID context = sp->Context;
        UCHAR control = sp->Control;
        NTSTATUS status = Irp->IoStatus.Status;
        BOOLEAN invoke;

        Irp->PendingReturned = (control & SL_PENDING_RETURNED) != 0;
        sp->Control = 0;
        sp->CompletionRoutine = NULL;
        sp->Context = NULL;
        Irp->CurrentLocation++;
        Irp->CurrentStackLocation++;
        invoke = routine && ((NT_SUCCESS(status) && (control & SL_INVOKE_ON_SUCCESS))
                             || (!NT_SUCCESS(status) && (control & SL_INVOKE_ON_ERROR))
                             || (Irp->Cancel && (control & SL_INVOKE_ON_CANCEL)));
        if (invoke) {
            PDEVICE_OBJECT device = Irp->CurrentLocation <= Irp->StackCount
                                    ? Irp->CurrentStackLocation->DeviceObject : NULL;
            if (routine(device, Irp, context) == STATUS_MORE_PROCESSING_REQUIRED)
                return;
        } else if (Irp->PendingReturned && Irp->CurrentLocation <= Irp->StackCount) {
            Irp->CurrentStackLocation->Control |= SL_PENDING_RETURNED;
        }
    }
    IopCompleteFinal(Irp);
}

VOID NTAPI IoCompleteRequest(PIRP Irp, CCHAR PriorityBoost) { IofCompleteRequest(Irp, PriorityBoost); }

/* IoSetCompletionRoutineEx: the routine is wrapped so that the wrapper always runs and
 * frees its context, and calls the driver's routine under the driver's conditions. */
typedef struct _IOP_COMPLETION_EX {
    PIO_COMPLETION_ROUTINE Routine;
    PVOID Context;
    UCHAR Control;
} IOP_COMPLETION_EX;

static NTSTATUS NTAPI IopCompletionEx(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    IOP_COMPLETION_EX ex = *(IOP_COMPLETION_EX *)Context;
    NTSTATUS status = Irp->IoStatus.Status;
    ExFreePoolWithTag(Context, TAG_COMPLETION);
    if ((NT_SUCCESS(status) && (ex.Control & SL_INVOKE_ON_SUCCESS))
        || (!NT_SUCCESS(status) && (ex.Control & SL_INVOKE_ON_ERROR))
        || (Irp->Cancel && (ex.Control & SL_INVOKE_ON_CANCEL)))
        return ex.Routine(DeviceObject, Irp, ex.Context);
    if (Irp->PendingReturned && Irp->CurrentLocation <= Irp->StackCount)
        Irp->CurrentStackLocation->Control |= SL_PENDING_RETURNED;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI IoSetCompletionRoutineEx(PDEVICE_OBJECT DeviceObject, PIRP Irp, PIO_COMPLETION_ROUTINE CompletionRoutine,
    PVOID Context, BOOLEAN InvokeOnSuccess, BOOLEAN InvokeOnError, BOOLEAN InvokeOnCancel)
{
    IOP_COMPLETION_EX *ex = ExAllocatePoolWithTag(NonPagedPool, sizeof(*ex), TAG_COMPLETION);
    PIO_STACK_LOCATION next = Irp->CurrentStackLocation - 1;
    (void)DeviceObject;
    if (!ex)
        return STATUS_INSUFFICIENT_RESOURCES;
    ex->Routine = CompletionRoutine;
    ex->Context = Context;
    ex->Control = (UCHAR)((InvokeOnSuccess ? SL_INVOKE_ON_SUCCESS : 0) | (InvokeOnError ? SL_INVOKE_ON_ERROR : 0)
                          | (InvokeOnCancel ? SL_INVOKE_ON_CANCEL : 0));
    next->CompletionRoutine = (PVOID)IopCompletionEx;
    next->Context = ex;
    next->Control = SL_INVOKE_ON_SUCCESS | SL_INVOKE_ON_ERROR | SL_INVOKE_ON_CANCEL;
    return STATUS_SUCCESS;
}

/* ---- Device stacks ---- */

PDEVICE_OBJECT NTAPI IoGetAttachedDevice(PDEVICE_OBJECT DeviceObject)
{
    while (DeviceObject->AttachedDevice)
        DeviceObject = DeviceObject->AttachedDevice;
    return DeviceObject;
}

/* One CPU: the count changes atomically with the IRQL above every interrupt. */
static LONG IopChangeReferences(PDEVICE_OBJECT Device, LONG Change)
{
    KIRQL old = KfRaiseIrql(HIGH_LEVEL);
    LONG count = Device->ReferenceCount += Change;
    KeLowerIrql(old);
    return count;
}

PDEVICE_OBJECT NTAPI IoGetAttachedDeviceReference(PDEVICE_OBJECT DeviceObject)
{
    PDEVICE_OBJECT top = IoGetAttachedDevice(DeviceObject);
    IopChangeReferences(top, 1);
    return top;
}

/* Attaches to the top of the target's stack: the source's stack size is one more than
 * that device's, and its alignment and sector size are taken over. */
PDEVICE_OBJECT NTAPI IoAttachDeviceToDeviceStack(PDEVICE_OBJECT SourceDevice, PDEVICE_OBJECT TargetDevice)
{
    PDEVICE_OBJECT top = IoGetAttachedDevice(TargetDevice);
    if (top == SourceDevice)
        return NULL;
    top->AttachedDevice = SourceDevice;
    SourceDevice->StackSize = (CCHAR)(top->StackSize + 1);
    IopAlignmentRequirement(SourceDevice) = IopAlignmentRequirement(top);
    IopSectorSize(SourceDevice) = IopSectorSize(top);
    IopAttachedTo(SourceDevice) = top;
    return top;
}

PDEVICE_OBJECT IopFindDevice(PCUNICODE_STRING Name);

/* The legacy form: the target named by its device name (\Device\...). */
NTSTATUS NTAPI IoAttachDevice(PDEVICE_OBJECT SourceDevice, PUNICODE_STRING TargetDevice,
                              PDEVICE_OBJECT *AttachedDevice)
{
    PDEVICE_OBJECT target = TargetDevice ? IopFindDevice(TargetDevice) : NULL;
    *AttachedDevice = NULL;
    if (!target)
        return STATUS_OBJECT_NAME_NOT_FOUND;
    *AttachedDevice = IoAttachDeviceToDeviceStack(SourceDevice, target);
    return *AttachedDevice ? STATUS_SUCCESS : STATUS_NO_SUCH_DEVICE;
}

VOID NTAPI IoDetachDevice(PDEVICE_OBJECT TargetDevice)
{
    PDEVICE_OBJECT attached = TargetDevice->AttachedDevice;
    if (!attached)
        return;
    IopAttachedTo(attached) = NULL;
    TargetDevice->AttachedDevice = NULL;
}

/* ObReferenceObject / ObDereferenceObject on a device object (ob.c asks). */
BOOLEAN IopReferenceDevice(PVOID Object, LONG Change, LONG_PTR *Count)
{
    if (!IopIsDevice(Object))
        return FALSE;
    *Count = IopChangeReferences(Object, Change);
    return TRUE;
}

/* ---- IRPs built for drivers ---- */

static PIRP IopBuildIrp(PDEVICE_OBJECT DeviceObject, UCHAR Major, PKEVENT Event, PIO_STATUS_BLOCK IoStatusBlock)
{
    PIRP irp = IoAllocateIrp(DeviceObject->StackSize, FALSE);
    PIO_STACK_LOCATION sp;
    if (!irp)
        return NULL;
    irp->AllocationFlags |= KSIM_IRP_BUILT;
    irp->RequestorMode = KernelMode;
    irp->UserIosb = IoStatusBlock;
    irp->UserEvent = Event;
    IopIrpThread(irp) = KeGetCurrentThread();
    sp = irp->CurrentStackLocation - 1;
    sp->MajorFunction = Major;
    return irp;
}

static BOOLEAN IopBuffer(PIRP Irp, PVOID Source, ULONG Size, ULONG CopyLength)
{
    Irp->AssociatedIrp.SystemBuffer = ExAllocatePoolWithTag(NonPagedPool, Size, TAG_BUILT_BUFFER);
    if (!Irp->AssociatedIrp.SystemBuffer)
        return FALSE;
    if (CopyLength)
        memcpy(Irp->AssociatedIrp.SystemBuffer, Source, CopyLength);
    Irp->Flags |= IRP_BUFFERED_IO | IRP_DEALLOCATE_BUFFER;
    return TRUE;
}

static BOOLEAN IopLockBuffer(PIRP Irp, PVOID Buffer, ULONG Length, ULONG Operation)
{
    PMDL mdl = IoAllocateMdl(Buffer, Length, FALSE, FALSE, Irp);
    if (!mdl)
        return FALSE;
    MmProbeAndLockPages(mdl, KernelMode, Operation);
    return TRUE;
}

static PIRP IopBuildFailed(PIRP Irp)
{
    if (Irp->Flags & IRP_DEALLOCATE_BUFFER)
        ExFreePoolWithTag(Irp->AssociatedIrp.SystemBuffer, TAG_BUILT_BUFFER);
    if (Irp->MdlAddress)
        IoFreeMdl(Irp->MdlAddress);
    IoFreeIrp(Irp);
    return NULL;
}

/* The buffers as the transfer type in the code's low two bits says: METHOD_BUFFERED
 * through one system buffer sized for the larger side, the direct methods with the
 * input buffered and the output locked in an MDL, METHOD_NEITHER with the caller's
 * addresses. */
PIRP NTAPI IoBuildDeviceIoControlRequest(ULONG IoControlCode, PDEVICE_OBJECT DeviceObject, PVOID InputBuffer,
    ULONG InputBufferLength, PVOID OutputBuffer, ULONG OutputBufferLength, BOOLEAN InternalDeviceIoControl,
    PKEVENT Event, PIO_STATUS_BLOCK IoStatusBlock)
{
    PIRP irp = IopBuildIrp(DeviceObject, InternalDeviceIoControl ? IRP_MJ_INTERNAL_DEVICE_CONTROL
                                                                 : IRP_MJ_DEVICE_CONTROL, Event, IoStatusBlock);
    PIO_STACK_LOCATION sp;
    ULONG size = InputBufferLength > OutputBufferLength ? InputBufferLength : OutputBufferLength;
    if (!irp)
        return NULL;
    sp = irp->CurrentStackLocation - 1;
    sp->Parameters.DeviceIoControl.IoControlCode = IoControlCode;
    sp->Parameters.DeviceIoControl.InputBufferLength = InputBufferLength;
    sp->Parameters.DeviceIoControl.OutputBufferLength = OutputBufferLength;
    switch (IoControlCode & 3) {
    case 0:
        if (size && !IopBuffer(irp, InputBuffer, size, InputBuffer ? InputBufferLength : 0))
            return IopBuildFailed(irp);
        if (OutputBufferLength)
            irp->Flags |= IRP_INPUT_OPERATION;
        irp->UserBuffer = OutputBuffer;
        break;
    case 1: case 2:
        if (InputBufferLength && !IopBuffer(irp, InputBuffer, InputBufferLength, InputBufferLength))
            return IopBuildFailed(irp);
        if (OutputBufferLength && !IopLockBuffer(irp, OutputBuffer, OutputBufferLength,
                                                 (IoControlCode & 3) == 1 ? IoReadAccess : IoWriteAccess))
            return IopBuildFailed(irp);
        break;
    default:
        sp->Parameters.DeviceIoControl.Type3InputBuffer = InputBuffer;
        irp->UserBuffer = OutputBuffer;
        break;
    }
    return irp;
}

/* Read, write, flush or shutdown; the buffer goes the way the device's flags ask. */
PIRP NTAPI IoBuildSynchronousFsdRequest(ULONG MajorFunction, PDEVICE_OBJECT DeviceObject, PVOID Buffer,
    ULONG Length, PLARGE_INTEGER StartingOffset, PKEVENT Event, PIO_STATUS_BLOCK IoStatusBlock)
{
    PIRP irp;
    PIO_STACK_LOCATION sp;
    if (MajorFunction != IRP_MJ_READ && MajorFunction != IRP_MJ_WRITE && MajorFunction != IRP_MJ_FLUSH_BUFFERS
        && MajorFunction != IRP_MJ_SHUTDOWN)
        return NULL;
    irp = IopBuildIrp(DeviceObject, (UCHAR)MajorFunction, Event, IoStatusBlock);
    if (!irp)
        return NULL;
    if (MajorFunction != IRP_MJ_READ && MajorFunction != IRP_MJ_WRITE)
        return irp;
    sp = irp->CurrentStackLocation - 1;
    sp->Parameters.Others.Argument1 = (PVOID)(ULONG_PTR)Length;                 /* Read.Length */
    sp->Parameters.Others.Argument3 = (PVOID)(StartingOffset ? StartingOffset->QuadPart : 0); /* ByteOffset */
    if (DeviceObject->Flags & DO_BUFFERED_IO) {
        if (Length && !IopBuffer(irp, Buffer, Length, MajorFunction == IRP_MJ_WRITE ? Length : 0))
            return IopBuildFailed(irp);
        if (MajorFunction == IRP_MJ_READ)
            irp->Flags |= IRP_INPUT_OPERATION;
        irp->UserBuffer = Buffer;
    } else if (DeviceObject->Flags & DO_DIRECT_IO) {
        if (Length && !IopLockBuffer(irp, Buffer, Length, MajorFunction == IRP_MJ_READ ? IoWriteAccess : IoReadAccess))
            return IopBuildFailed(irp);
    } else {
        irp->UserBuffer = Buffer;
    }
    return irp;
}

/* ---- IoGetDeviceObjectPointer ---- */

#define IRP_MJ_CLEANUP 0x12
#define FILE_OBJECT_SIZE 0xD8
#define FO_DEVICE(f) (*(PDEVICE_OBJECT *)((PUCHAR)(f) + 0x08))

PVOID ObpCreateDeviceFileObject(VOID);
LONG_PTR NTAPI ObfDereferenceObject(PVOID Object);
NTSTATUS NTAPI IofCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp);
NTSTATUS NTAPI KeWaitForSingleObject(PVOID Object, ULONG WaitReason, KPROCESSOR_MODE WaitMode, BOOLEAN Alertable,
                                     PLARGE_INTEGER Timeout);
VOID NTAPI KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);

/* One IRP on the file object to the top of its device's stack, waited for. */
static NTSTATUS IopFileRequest(PVOID File, UCHAR Major)
{
    PDEVICE_OBJECT top = IoGetAttachedDevice(FO_DEVICE(File));
    KEVENT event;
    IO_STATUS_BLOCK iosb;
    PIRP irp;
    NTSTATUS status;

    KeInitializeEvent(&event, NotificationEvent, FALSE);
    irp = IopBuildIrp(top, Major, &event, &iosb);
    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    irp->OriginalFileObject = File;
    (irp->CurrentStackLocation - 1)->FileObject = File;
    status = IofCallDriver(top, irp);
    if (status == STATUS_PENDING) {
        KeWaitForSingleObject(&event, 0, KernelMode, FALSE, NULL);
        status = iosb.Status;
    }
    return status;
}

/* Opens the device named ObjectName (\Device\...) as a kernel-mode caller: a file
 * object (which holds a reference to the device) after an IRP_MJ_CREATE the stack
 * accepted, and the top device of its stack.  Releasing the file object's last
 * reference sends cleanup and close. */
NTSTATUS NTAPI IoGetDeviceObjectPointer(PUNICODE_STRING ObjectName, ACCESS_MASK DesiredAccess,
                                        PVOID *FileObject, PDEVICE_OBJECT *DeviceObject)
{
    PDEVICE_OBJECT device = ObjectName ? IopFindDevice(ObjectName) : NULL;
    PVOID file;
    NTSTATUS status;
    (void)DesiredAccess;

    if (!device)
        return STATUS_OBJECT_NAME_NOT_FOUND;
    file = ObpCreateDeviceFileObject();
    if (!file)
        return STATUS_INSUFFICIENT_RESOURCES;
    *(CSHORT *)file = 5;                                   /* IO_TYPE_FILE */
    *((CSHORT *)file + 1) = FILE_OBJECT_SIZE;
    FO_DEVICE(file) = device;
    IopChangeReferences(device, 1);
    status = IopFileRequest(file, IRP_MJ_CREATE);
    if (!NT_SUCCESS(status)) {
        /* Never opened: no cleanup or close for it. */
        FO_DEVICE(file) = NULL;
        IopChangeReferences(device, -1);
        ObfDereferenceObject(file);
        return status;
    }
    *FileObject = file;
    *DeviceObject = IoGetAttachedDevice(device);
    return STATUS_SUCCESS;
}

VOID IopCloseDeviceFile(PVOID FileObject)
{
    PDEVICE_OBJECT device = FO_DEVICE(FileObject);
    if (!device)
        return;
    IopFileRequest(FileObject, IRP_MJ_CLEANUP);
    IopFileRequest(FileObject, IRP_MJ_CLOSE);
    IopChangeReferences(device, -1);
}
