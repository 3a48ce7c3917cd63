/*
 * startio.sys - the StartIo model as a WDM driver uses it, written for the tests:
 * IoStartPacket from the dispatch routine (the IRP marked pending), a StartIo routine
 * that completes its IRP and calls IoStartNextPacket, packets queued behind a busy
 * device and started in order or by key, cancel routines given to IoStartPacket for
 * queued and current packets, and a device queue of the driver's own.  A user program
 * sends IOCTL_STARTIO_ONE (one packet through StartIo, its reply in the output buffer)
 * and IOCTL_STARTIO_CASES (each case runs and prints one "startio: <case> ..." line);
 * IOCTL_STARTIO_MISUSE completes its IRP with a cancel routine still set.
 */
#include <ntddk.h>

#define IOCTL_STARTIO_ONE   CTL_CODE(40001, 0x900, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_STARTIO_CASES CTL_CODE(40001, 0x901, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define IOCTL_STARTIO_MISUSE CTL_CODE(40001, 0x902, METHOD_BUFFERED, FILE_ANY_ACCESS)
#define STARTIO_HOLD 1      /* a packet StartIo leaves current until the test releases it */
#define STARTIO_DONE 2      /* a packet StartIo completes at once */

static UNICODE_STRING DeviceName = RTL_CONSTANT_STRING(L"\\Device\\StartIoKsim");
static UNICODE_STRING DosName = RTL_CONSTANT_STRING(L"\\DosDevices\\StartIoKsim");

static const CHAR OneReply[] = "started irql=0 current=0";

/* What StartIo saw, in order: each packet's letter and the IRQL it ran at. */
static CHAR Started[16];
static KIRQL StartedIrql[16];
static ULONG StartedCount;
static BOOLEAN ByKey;
static ULONG CancelCalls;
static NTSTATUS Completed[8];
static ULONG CompletedCount;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD StartIoUnload;
DRIVER_STARTIO StartIoRoutine;
DRIVER_CANCEL StartIoCancel;
DRIVER_DISPATCH StartIoCreateClose;
DRIVER_DISPATCH StartIoDeviceControl;
IO_COMPLETION_ROUTINE PacketDone;

static NTSTATUS Complete(PIRP Irp, NTSTATUS Status, ULONG_PTR Information)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = Information;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

NTSTATUS StartIoCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    return Complete(Irp, STATUS_SUCCESS, 0);
}

/* The classic cancel routine of a StartIo driver: the current packet makes way for
 * the next one; a queued one leaves the device queue. */
VOID StartIoCancel(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    CancelCalls++;
    if (Irp == DeviceObject->CurrentIrp) {
        KIRQL old;
        IoReleaseCancelSpinLock(Irp->CancelIrql);
        KeRaiseIrql(DISPATCH_LEVEL, &old);
        IoStartNextPacket(DeviceObject, TRUE);
        KeLowerIrql(old);
    } else {
        KeRemoveEntryDeviceQueue(&DeviceObject->DeviceQueue, &Irp->Tail.Overlay.DeviceQueueEntry);
        IoReleaseCancelSpinLock(Irp->CancelIrql);
    }
    Complete(Irp, STATUS_CANCELLED, 0);
}

VOID StartIoRoutine(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    ULONG kind = sp->Parameters.DeviceIoControl.InputBufferLength;
    ULONG key = sp->Parameters.DeviceIoControl.OutputBufferLength;
    KIRQL irql;

    if (sp->Parameters.DeviceIoControl.IoControlCode == IOCTL_STARTIO_ONE) {
        PCHAR out = Irp->AssociatedIrp.SystemBuffer;
        IoSetCancelRoutine(Irp, NULL);
        if (sp->Parameters.DeviceIoControl.OutputBufferLength < sizeof(OneReply)) {
            Complete(Irp, STATUS_BUFFER_TOO_SMALL, 0);
        } else {
            RtlCopyMemory(out, OneReply, sizeof(OneReply));
            out[13] = (CHAR)('0' + KeGetCurrentIrql());
            out[23] = (CHAR)('0' + (DeviceObject->CurrentIrp == Irp));
            Complete(Irp, STATUS_SUCCESS, sizeof(OneReply));
        }
        IoStartNextPacket(DeviceObject, TRUE);
        return;
    }
    if (StartedCount < sizeof(Started)) {
        Started[StartedCount] = (CHAR)(ULONG_PTR)sp->Parameters.DeviceIoControl.Type3InputBuffer;
        StartedIrql[StartedCount++] = KeGetCurrentIrql();
    }
    if (kind == STARTIO_HOLD)
        return;
    IoAcquireCancelSpinLock(&irql);
    IoSetCancelRoutine(Irp, NULL);
    IoReleaseCancelSpinLock(irql);
    Complete(Irp, STATUS_SUCCESS, 0);
    if (ByKey)
        IoStartNextPacketByKey(DeviceObject, TRUE, key);
    else
        IoStartNextPacket(DeviceObject, TRUE);
}

NTSTATUS PacketDone(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context)
{
    UNREFERENCED_PARAMETER(DeviceObject);
    UNREFERENCED_PARAMETER(Context);
    if (CompletedCount < ARRAYSIZE(Completed))
        Completed[CompletedCount++] = Irp->IoStatus.Status;
    return STATUS_MORE_PROCESSING_REQUIRED;
}

/* A packet of the driver's own, as the I/O manager would hand it to the device: one
 * location for the driver (its completion routine set there) and one for the device. */
static PIRP Packet(PDEVICE_OBJECT Device, CHAR Letter, ULONG Kind, ULONG Key)
{
    PIRP irp = IoAllocateIrp(Device->StackSize + 1, FALSE);
    PIO_STACK_LOCATION sp;
    if (!irp)
        return NULL;
    IoSetNextIrpStackLocation(irp);
    sp = IoGetNextIrpStackLocation(irp);
    sp->MajorFunction = IRP_MJ_DEVICE_CONTROL;
    sp->Parameters.DeviceIoControl.IoControlCode = IOCTL_STARTIO_CASES;
    sp->Parameters.DeviceIoControl.InputBufferLength = Kind;
    sp->Parameters.DeviceIoControl.OutputBufferLength = Key;
    sp->Parameters.DeviceIoControl.Type3InputBuffer = (PVOID)(ULONG_PTR)Letter;
    sp->DeviceObject = Device;
    IoSetCompletionRoutine(irp, PacketDone, NULL, TRUE, TRUE, TRUE);
    IoSetNextIrpStackLocation(irp);
    return irp;
}

static VOID Reset(VOID)
{
    RtlZeroMemory(Started, sizeof(Started));
    StartedCount = 0;
    CompletedCount = 0;
    CancelCalls = 0;
    ByKey = FALSE;
}

static VOID Release(PDEVICE_OBJECT Device, PIRP Held)
{
    ULONG key = IoGetCurrentIrpStackLocation(Held)->Parameters.DeviceIoControl.OutputBufferLength;
    KIRQL old;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    IoSetCancelRoutine(Held, NULL);
    Complete(Held, STATUS_SUCCESS, 0);
    if (ByKey)
        IoStartNextPacketByKey(Device, TRUE, key);
    else
        IoStartNextPacket(Device, TRUE);
    KeLowerIrql(old);
}

static VOID CaseInOrder(PDEVICE_OBJECT Device)
{
    PIRP a = Packet(Device, 'A', STARTIO_HOLD, 0), b = Packet(Device, 'B', STARTIO_DONE, 0);
    PIRP c = Packet(Device, 'C', STARTIO_DONE, 0);
    ULONG atOnce;
    Reset();
    IoStartPacket(Device, a, NULL, StartIoCancel);
    IoStartPacket(Device, b, NULL, StartIoCancel);
    IoStartPacket(Device, c, NULL, StartIoCancel);
    atOnce = StartedCount;
    Release(Device, a);
    DbgPrint("startio: in order started=%s at_once=%lu irql=%u%u%u completed=%lu idle=%d busy=%d\n",
             Started, atOnce, StartedIrql[0], StartedIrql[1], StartedIrql[2], CompletedCount,
             Device->CurrentIrp == NULL, Device->DeviceQueue.Busy);
    IoFreeIrp(a);
    IoFreeIrp(b);
    IoFreeIrp(c);
}

static VOID CaseByKey(PDEVICE_OBJECT Device)
{
    PIRP a = Packet(Device, 'A', STARTIO_HOLD, 4), b = Packet(Device, 'B', STARTIO_DONE, 3);
    PIRP c = Packet(Device, 'C', STARTIO_DONE, 5), d = Packet(Device, 'D', STARTIO_DONE, 7);
    ULONG key;
    Reset();
    ByKey = TRUE;
    key = 4;
    IoStartPacket(Device, a, &key, NULL);
    key = 7;
    IoStartPacket(Device, d, &key, NULL);
    key = 3;
    IoStartPacket(Device, b, &key, NULL);
    key = 5;
    IoStartPacket(Device, c, &key, NULL);
    Release(Device, a);
    DbgPrint("startio: by key started=%s completed=%lu busy=%d\n", Started, CompletedCount,
             Device->DeviceQueue.Busy);
    IoFreeIrp(a);
    IoFreeIrp(b);
    IoFreeIrp(c);
    IoFreeIrp(d);
}

static VOID CaseCancel(PDEVICE_OBJECT Device)
{
    PIRP a = Packet(Device, 'A', STARTIO_HOLD, 0), b = Packet(Device, 'B', STARTIO_DONE, 0);
    PIRP c = Packet(Device, 'C', STARTIO_DONE, 0), e = Packet(Device, 'E', STARTIO_DONE, 0);
    BOOLEAN queued, current;
    Reset();
    IoStartPacket(Device, a, NULL, StartIoCancel);
    IoStartPacket(Device, b, NULL, StartIoCancel);
    IoStartPacket(Device, c, NULL, StartIoCancel);
    queued = IoCancelIrp(b);
    /* Cancelled before it reaches a busy device: IoStartPacket calls the routine. */
    e->Cancel = TRUE;
    IoStartPacket(Device, e, NULL, StartIoCancel);
    current = IoCancelIrp(a);
    DbgPrint("startio: cancel queued=%d current=%d calls=%lu started=%s status=%08lx,%08lx,%08lx,%08lx "
             "idle=%d busy=%d\n", queued, current, CancelCalls, Started, Completed[0], Completed[1],
             Completed[2], Completed[3], Device->CurrentIrp == NULL, Device->DeviceQueue.Busy);
    IoFreeIrp(a);
    IoFreeIrp(b);
    IoFreeIrp(c);
    IoFreeIrp(e);
}

static VOID CaseDeviceQueue(VOID)
{
    KDEVICE_QUEUE queue;
    KDEVICE_QUEUE_ENTRY e1, e2, e3, lone;
    BOOLEAN i1, i2, i3, i4, gone, stray, busy;
    PKDEVICE_QUEUE_ENTRY r1, r2;
    KIRQL old;

    KeInitializeDeviceQueue(&queue);
    lone.Inserted = FALSE;
    KeRaiseIrql(DISPATCH_LEVEL, &old);
    i1 = KeInsertDeviceQueue(&queue, &e1);
    i2 = KeInsertDeviceQueue(&queue, &e2);
    i3 = KeInsertDeviceQueue(&queue, &e3);
    gone = KeRemoveEntryDeviceQueue(&queue, &e3);
    stray = KeRemoveEntryDeviceQueue(&queue, &lone);
    r1 = KeRemoveDeviceQueue(&queue);
    r2 = KeRemoveDeviceQueue(&queue);
    busy = queue.Busy;
    i4 = KeInsertDeviceQueue(&queue, &e1);
    KeLowerIrql(old);
    DbgPrint("startio: device queue insert=%d%d%d removed_entry=%d stray=%d first=%d empty=%d busy_after=%d "
             "again=%d\n", i1, i2, i3, gone, stray, r1 == &e2, r2 == NULL, busy, i4);
}

NTSTATUS StartIoDeviceControl(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp = IoGetCurrentIrpStackLocation(Irp);
    switch (sp->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_STARTIO_ONE:
        IoMarkIrpPending(Irp);
        IoStartPacket(DeviceObject, Irp, NULL, StartIoCancel);
        return STATUS_PENDING;
    case IOCTL_STARTIO_MISUSE:
        /* Completed with its cancel routine still set: the documented bug check 0x48. */
        IoSetCancelRoutine(Irp, StartIoCancel);
        return Complete(Irp, STATUS_SUCCESS, 0);
    case IOCTL_STARTIO_CASES:
        CaseInOrder(DeviceObject);
        CaseByKey(DeviceObject);
        CaseCancel(DeviceObject);
        CaseDeviceQueue();
        return Complete(Irp, STATUS_SUCCESS, 0);
    default:
        return Complete(Irp, STATUS_INVALID_DEVICE_REQUEST, 0);
    }
}

VOID StartIoUnload(PDRIVER_OBJECT DriverObject)
{
    IoDeleteSymbolicLink(&DosName);
    IoDeleteDevice(DriverObject->DeviceObject);
    DbgPrint("startio: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PDEVICE_OBJECT device;
    NTSTATUS status;
    UNREFERENCED_PARAMETER(RegistryPath);

    status = IoCreateDevice(DriverObject, 0, &DeviceName, FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
    if (!NT_SUCCESS(status))
        return status;
    device->Flags |= DO_BUFFERED_IO;
    DriverObject->MajorFunction[IRP_MJ_CREATE] = StartIoCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = StartIoCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLEANUP] = StartIoCreateClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = StartIoDeviceControl;
    DriverObject->DriverStartIo = StartIoRoutine;
    DriverObject->DriverUnload = StartIoUnload;
    IoSetStartIoAttributes(device, FALSE, FALSE);
    status = IoCreateSymbolicLink(&DosName, &DeviceName);
    if (!NT_SUCCESS(status)) {
        IoDeleteDevice(device);
        return status;
    }
    device->Flags &= ~DO_DEVICE_INITIALIZING;
    DbgPrint("startio: loaded\n");
    return STATUS_SUCCESS;
}
