/*
 * trackdemo.c - the demo driver built on Track (track.md; issue 4, "trackdemo.sys").
 *
 * DriverEntry breaks in when a debugger is attached, initialises Track, creates
 * \Device\TrackDemo and allocates through every tracked class. The kernel's system loop
 * then sends IOCTL_TRACKDEMO_TICK through IoCallDriver again and again (so the target
 * really runs), and the other IOCTLs of trackdemo.h on request. Unload releases all but
 * the planted leaks and ends with TRACKCLOSE, whose leak report therefore lists exactly
 * the two objects IOCTL_TRACKDEMO_LEAK creates (the lines marked "planted leak").
 * Checked builds (DBG=1) TRACE and assert; free builds (DBG=0) do neither, while Track
 * records and reports in both.
 */
#define TRACK_SOURCE_NAME "trackdemo\\trackdemo.c"
#include "ntdecl.h"
#include "diag.h"
#include "track.h"
#include "trackdemo.h"

/* 'Demo' in memory. */
#define TAG 0x6F6D6544UL
#define TRACKDEMO_WORK_SIZE 256
#define LEAK_SIZE 20
#define TRACKDEMO_OVERWRITE_SIZE 24
#define PAGE_SIZE 0x1000

typedef struct _TRACKDEMO_EXTENSION {
    PUCHAR WorkBuffer;
    HANDLE EventHandle;
} TRACKDEMO_EXTENSION, *PTRACKDEMO_EXTENSION;

DRIVER_INITIALIZE DriverEntry;
static DRIVER_UNLOAD TrackDemoUnload;
static DRIVER_DISPATCH TrackDemoCreateClose;
static DRIVER_DISPATCH TrackDemoDispatch;

/* Read by debugger tests: bumped once per IOCTL_TRACKDEMO_TICK. */
volatile ULONG TrackDemoTickCount;
/* The block IOCTL_TRACKDEMO_OVERWRITE damages; freed by the unload routine. */
PUCHAR TrackDemoOverwriteBlock;
BOOLEAN TrackDemoLeaksPlanted;

/* Calls made once at load time, each released at once: together with the tick they
   take every class, and most tracked functions, through the kernel. Failures are
   traced and tolerated: the kernel's object manager need not know every name. */
static VOID TrackDemoExercise(PUNICODE_STRING RegistryPath, PUCHAR WorkBuffer)
{
    PHYSICAL_ADDRESS highest;
    OBJECT_ATTRIBUTES attributes;
    UNICODE_STRING name;
    ANSI_STRING ansi;
    HANDLE handle;
    PVOID block;
    PMDL source;
    PMDL partial;
    NTSTATUS status;

    ASSERT_PASSIVE_LEVEL();
    block = TrackExAllocatePoolWithQuota(PagedPool, 48);
    if (block != NULL) {
        TrackExFreePool(block);
    }
    block = TrackExAllocatePoolWithQuotaTag(PagedPool, 80, TAG);
    if (block != NULL) {
        TrackExFreePool(block);
    }
    highest.QuadPart = 0xFFFFFFFF;
    block = TrackMmAllocateContiguousMemory(PAGE_SIZE, highest);
    if (block != NULL) {
        TrackMmFreeContiguousMemory(block);
    }
    block = TrackMmAllocateNonCachedMemory(64);
    if (block != NULL) {
        TrackMmFreeNonCachedMemory(block, 64);
    }

    status = TrackRtlUnicodeStringToAnsiString(&ansi, RegistryPath, TRUE);
    if (NT_SUCCESS(status)) {
        TrackRtlFreeAnsiString(&ansi);
    }
    if (WorkBuffer != NULL) {
        source = TrackIoAllocateMdl(WorkBuffer, TRACKDEMO_WORK_SIZE, FALSE, FALSE, NULL);
        partial = TrackIoAllocateMdl(WorkBuffer, PAGE_SIZE, FALSE, FALSE, NULL);
        if (source != NULL && partial != NULL) {
            TrackIoBuildPartialMdl(source, partial, WorkBuffer + 16, 64);
        }
        if (partial != NULL) {
            TrackIoFreeMdl(partial);
        }
        if (source != NULL) {
            TrackIoFreeMdl(source);
        }
    }

    InitializeObjectAttributes(&attributes, RegistryPath, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE,
                               NULL, NULL);
    status = TrackZwOpenKey(&handle, KEY_READ, &attributes);
    if (NT_SUCCESS(status)) {
        VERIFY(NT_SUCCESS(TrackZwClose(handle)));
    } else {
        TRACE("TrackDemo: ZwOpenKey failed with %08x\n", (unsigned int)status);
    }

    RtlInitUnicodeString(&name, u"\\Device\\PhysicalMemory");
    InitializeObjectAttributes(&attributes, &name, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL,
                               NULL);
    status = TrackZwOpenSection(&handle, SECTION_QUERY, &attributes);
    if (NT_SUCCESS(status)) {
        VERIFY(NT_SUCCESS(TrackZwClose(handle)));
    } else {
        TRACE("TrackDemo: ZwOpenSection failed with %08x\n", (unsigned int)status);
    }

    RtlInitUnicodeString(&name, u"\\BaseNamedObjects\\TrackDemoSync");
    if (TrackIoCreateSynchronizationEvent(&name, &handle) != NULL) {
        VERIFY(NT_SUCCESS(TrackZwClose(handle)));
    } else {
        TRACE("TrackDemo: IoCreateSynchronizationEvent failed\n");
    }
}

/* Opens the driver's own device, as a client would: runs after the dispatch table is
   set, so the kernel can deliver IRP_MJ_CREATE and IRP_MJ_CLOSE. */
static VOID TrackDemoOpenSelf(VOID)
{
    OBJECT_ATTRIBUTES attributes;
    IO_STATUS_BLOCK iosb;
    UNICODE_STRING name;
    HANDLE handle;
    NTSTATUS status;

    RtlInitUnicodeString(&name, TRACKDEMO_DEVICE_NAME);
    InitializeObjectAttributes(&attributes, &name, OBJ_CASE_INSENSITIVE | OBJ_KERNEL_HANDLE, NULL,
                               NULL);
    status = TrackZwCreateFile(&handle, GENERIC_READ | SYNCHRONIZE, &attributes, &iosb, NULL,
                               FILE_ATTRIBUTE_NORMAL, FILE_SHARE_READ, FILE_OPEN,
                               FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
    if (NT_SUCCESS(status)) {
        VERIFY(NT_SUCCESS(TrackZwClose(handle)));
    } else {
        TRACE("TrackDemo: ZwCreateFile failed with %08x\n", (unsigned int)status);
    }
}

NTSTATUS NTAPI DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNICODE_STRING name;
    PDEVICE_OBJECT device;
    PTRACKDEMO_EXTENSION extension;
    NTSTATUS status;

    BreakIfKdPresent();
    ASSERT_PASSIVE_LEVEL();
    TRACKINITIALIZE;
    TRACE("TrackDemo: DriverEntry\n");

    RtlInitUnicodeString(&name, TRACKDEMO_DEVICE_NAME);
    status = TrackIoCreateDevice(DriverObject, sizeof(TRACKDEMO_EXTENSION), &name,
                                 FILE_DEVICE_UNKNOWN, 0, FALSE, &device);
    if (!NT_SUCCESS(status)) {
        TRACE("TrackDemo: IoCreateDevice failed with %08x\n", (unsigned int)status);
        TRACKCLOSE;
        return status;
    }
    extension = (PTRACKDEMO_EXTENSION)device->DeviceExtension;
    extension->WorkBuffer =
        (PUCHAR)TrackExAllocatePoolWithTag(NonPagedPool, TRACKDEMO_WORK_SIZE, TAG);
    extension->EventHandle = NULL;
    RtlInitUnicodeString(&name, u"\\BaseNamedObjects\\TrackDemoEvent");
    if (TrackIoCreateNotificationEvent(&name, &extension->EventHandle) == NULL) {
        extension->EventHandle = NULL;
        TRACE("TrackDemo: IoCreateNotificationEvent failed\n");
    }

    TrackDemoExercise(RegistryPath, extension->WorkBuffer);

    DriverObject->MajorFunction[IRP_MJ_CREATE] = TrackDemoCreateClose;
    DriverObject->MajorFunction[IRP_MJ_CLOSE] = TrackDemoCreateClose;
    DriverObject->MajorFunction[IRP_MJ_DEVICE_CONTROL] = TrackDemoDispatch;
    DriverObject->DriverUnload = TrackDemoUnload;

    TrackDemoOpenSelf();
    TRACE("TrackDemo: ready\n");
    return STATUS_SUCCESS;
}

/* One pass of periodic work: an allocation and a release in every class. */
static VOID TrackDemoTick(PTRACKDEMO_EXTENSION Extension)
{
    OBJECT_ATTRIBUTES attributes;
    UNICODE_STRING wide;
    ANSI_STRING ansi;
    HANDLE directory;
    PUCHAR block;
    PMDL mdl;
    ULONG tick = TrackDemoTickCount;

    block = (PUCHAR)TrackExAllocatePoolWithTag(NonPagedPool, 64 + 16 * (tick % 4), TAG);
    if (block != NULL) {
        RtlFillMemory(block, 64, (UCHAR)tick);
        TrackExFreePool(block);
    }
    block = (PUCHAR)TrackExAllocatePool(PagedPool, 32);
    if (block != NULL) {
        TrackExFreePool(block);
    }

    RtlInitAnsiString(&ansi, "TrackDemo tick");
    if (NT_SUCCESS(TrackRtlAnsiStringToUnicodeString(&wide, &ansi, TRUE))) {
        TrackRtlFreeUnicodeString(&wide);
    }
    if (Extension->WorkBuffer != NULL) {
        mdl = TrackIoAllocateMdl(Extension->WorkBuffer, TRACKDEMO_WORK_SIZE, FALSE, FALSE, NULL);
        if (mdl != NULL) {
            TrackIoFreeMdl(mdl);
        }
    }

    InitializeObjectAttributes(&attributes, NULL, OBJ_KERNEL_HANDLE, NULL, NULL);
    if (NT_SUCCESS(TrackZwCreateDirectoryObject(&directory, DIRECTORY_ALL_ACCESS, &attributes))) {
        VERIFY(NT_SUCCESS(TrackZwClose(directory)));
    }
    TrackDemoTickCount = tick + 1;
}

/* The deliberate leaks: never released, so TRACKCLOSE reports exactly these two, newest
   first (the string, then the 20-byte block). Planted once, however often asked. */
static VOID TrackDemoPlantLeaks(VOID)
{
    ANSI_STRING ansi;
    UNICODE_STRING leaked;
    PVOID block;

    if (TrackDemoLeaksPlanted) {
        return;
    }
    TrackDemoLeaksPlanted = TRUE;
    block = TrackExAllocatePoolWithTag(NonPagedPool, LEAK_SIZE, TAG); /* planted leak: memory */
    if (block != NULL) {
        RtlFillMemory(block, LEAK_SIZE, 0x4C);
    }
    RtlInitAnsiString(&ansi, "TrackDemo leaked string");
    (void)TrackRtlAnsiStringToUnicodeString(&leaked, &ansi, TRUE); /* planted leak: resource */
    TRACE("TrackDemo: leaks planted\n");
}

/* Writes four bytes past the end of a tracked block, into its trailing guard, then
   validates: Track prints "Memory Overwrite corruption" and asserts (checked build). */
static VOID TrackDemoOverwrite(VOID)
{
    volatile ULONG length = TRACKDEMO_OVERWRITE_SIZE;
    PVOID block;
    ULONG i;

    if (TrackDemoOverwriteBlock == NULL) {
        block = TrackExAllocatePoolWithTag(NonPagedPool, length, TAG); /* overwritten block */
        TrackDemoOverwriteBlock = (PUCHAR)block;
    }
    if (TrackDemoOverwriteBlock == NULL) {
        return;
    }
    for (i = 0; i < length + 4; i++) {
        TrackDemoOverwriteBlock[i] = (UCHAR)i;
    }
    TRACKVALIDATEALLOCATED;
}

static NTSTATUS TrackDemoComplete(PIRP Irp, NTSTATUS Status)
{
    Irp->IoStatus.Status = Status;
    Irp->IoStatus.Information = 0;
    IoCompleteRequest(Irp, IO_NO_INCREMENT);
    return Status;
}

static NTSTATUS NTAPI TrackDemoCreateClose(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    (void)DeviceObject;
    return TrackDemoComplete(Irp, STATUS_SUCCESS);
}

static NTSTATUS NTAPI TrackDemoDispatch(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION stack = IoGetCurrentIrpStackLocation(Irp);
    PTRACKDEMO_EXTENSION extension = (PTRACKDEMO_EXTENSION)DeviceObject->DeviceExtension;

    /* Validation, reachable from here, is legal only at PASSIVE_LEVEL. */
    ASSERT_PASSIVE_LEVEL();
    switch (stack->Parameters.DeviceIoControl.IoControlCode) {
    case IOCTL_TRACKDEMO_TICK:
        TrackDemoTick(extension);
        break;
    case IOCTL_TRACKDEMO_LEAK:
        TrackDemoPlantLeaks();
        break;
    case IOCTL_TRACKDEMO_OVERWRITE:
        TrackDemoOverwrite();
        break;
    case IOCTL_TRACKDEMO_STATS:
        TRACKSTATS;
        break;
    case IOCTL_TRACKDEMO_DUMP:
        TRACKDUMPALLOCATED;
        break;
    case IOCTL_TRACKDEMO_VALIDATE:
        TRACKVALIDATEALLOCATED;
        break;
    default:
        return TrackDemoComplete(Irp, STATUS_INVALID_DEVICE_REQUEST);
    }
    return TrackDemoComplete(Irp, STATUS_SUCCESS);
}

static VOID NTAPI TrackDemoUnload(PDRIVER_OBJECT DriverObject)
{
    PDEVICE_OBJECT device = DriverObject->DeviceObject;

    ASSERT_PASSIVE_LEVEL();
    TRACE("TrackDemo: unloading after %u ticks\n", (unsigned int)TrackDemoTickCount);
    if (device != NULL) {
        PTRACKDEMO_EXTENSION extension = (PTRACKDEMO_EXTENSION)device->DeviceExtension;
        if (extension->WorkBuffer != NULL) {
            TrackExFreePool(extension->WorkBuffer);
        }
        if (extension->EventHandle != NULL) {
            VERIFY(NT_SUCCESS(TrackZwClose(extension->EventHandle)));
        }
        TrackIoDeleteDevice(device);
    }
    if (TrackDemoOverwriteBlock != NULL) {
        TrackExFreePool(TrackDemoOverwriteBlock);
        TrackDemoOverwriteBlock = NULL;
    }
    TRACKCLOSE;
}
