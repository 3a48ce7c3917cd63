/*
 * io.c - the I/O manager: driver and device objects, IRPs, MDLs, driver start and
 * unload, and the IOCTLs the system loop sends.
 *
 * Layouts: DRIVER_OBJECT, DEVICE_OBJECT, IRP and IO_STACK_LOCATION as in ntbase.h
 * (real x64).  Driver and device objects are objects with Windows' headers (ob.c), the
 * named ones in \Driver and \Device; nt!IopDrivers lists the loaded drivers as well.
 * Memory is mapped flat, so MmMapLockedPages returns the buffer's own
 * address.  Completion, device stacks and StartIo are in iocomp.c and iostart.c.
 */
#include "ki.h"
#include "obp.h"

#define NO_MORE_IRP_STACK_LOCATIONS 0x00000035
#define DO_DEVICE_INITIALIZING 0x00000080
#define IOCTL_BUFFER_SIZE 0x100
#define TAG_IRP    ' prI'
#define TAG_MDL    ' ldM'
#define TAG_NAME   'maNO'

VOID KdpReportModule(PKLDR_DATA_TABLE_ENTRY Entry, BOOLEAN Unload);

static PDRIVER_OBJECT IopDrivers[KSIM_MAX_DRIVERS];
static ULONG IopDriverCount;
static UCHAR IopIoctlBuffer[IOCTL_BUFFER_SIZE];
static PDRIVER_OBJECT IopStarting;

VOID NTAPI KeInitializeDeviceQueue(PVOID DeviceQueue);

static NTSTATUS NTAPI IopInvalidDeviceRequest(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    (void)DeviceObject;
    Irp->IoStatus.Status = STATUS_INVALID_DEVICE_REQUEST;
    return STATUS_INVALID_DEVICE_REQUEST;
}

VOID IopInitialize(VOID)
{
    IopDriverCount = 0;
}

/* A UNICODE_STRING in pool: Prefix (ASCII) followed by Name (UTF-16, no extension). */
static NTSTATUS IopMakeName(PUNICODE_STRING Out, PCSTR Prefix, PCUNICODE_STRING Name, BOOLEAN StripExtension)
{
    SIZE_T p = strlen(Prefix), n = Name ? Name->Length / 2 : 0, i;
    if (StripExtension)
        for (i = n; i > 0; i--)
            if (Name->Buffer[i - 1] == '.') { n = i - 1; break; }
    Out->Buffer = ExAllocatePoolWithTag(PagedPool, (p + n + 1) * 2, TAG_NAME);
    if (!Out->Buffer)
        return STATUS_INSUFFICIENT_RESOURCES;
    for (i = 0; i < p; i++)
        Out->Buffer[i] = (UCHAR)Prefix[i];
    for (i = 0; i < n; i++)
        Out->Buffer[p + i] = Name->Buffer[i];
    Out->Buffer[p + n] = 0;
    Out->Length = (USHORT)((p + n) * 2);
    Out->MaximumLength = (USHORT)((p + n + 1) * 2);
    return STATUS_SUCCESS;
}

static VOID IopFreeName(PUNICODE_STRING Name)
{
    if (Name->Buffer)
        ExFreePoolWithTag(Name->Buffer, TAG_NAME);
    Name->Buffer = NULL;
}

/* Unlinks a driver image from PsLoadedModuleList, reports the unload, gives its pages
 * to the free list, remembers where it was and has the loader unmap the image. */
static VOID IopUnloadImage(PKLDR_DATA_TABLE_ENTRY Entry)
{
    KdpReportModule(Entry, TRUE);
    RemoveEntryList(&Entry->InLoadOrderLinks);
    MiFreeImagePages(Entry->DllBase, Entry->SizeOfImage);
    MiRememberUnloadedImage(Entry->DllBase, Entry->SizeOfImage);
    HalSimControl(KSIM_CONTROL_UNMAP_IMAGE, (ULONG64)Entry->DllBase, Entry->SizeOfImage);
}

VOID PspNotifyDriverLoad(PKLDR_DATA_TABLE_ENTRY Entry);

NTSTATUS IopStartDriver(PKLDR_DATA_TABLE_ENTRY Entry)
{
    PDRIVER_OBJECT driver;
    UNICODE_STRING registryPath;
    NTSTATUS status;
    ULONG i;

    UNICODE_STRING name;

    KdpReportModule(Entry, FALSE);
    PspNotifyDriverLoad(Entry);
    driver = NULL;
    if (IopDriverCount < KSIM_MAX_DRIVERS && NT_SUCCESS(IopMakeName(&name, "\\Driver\\", &Entry->BaseDllName, TRUE))) {
        driver = ObpCreateNamedBody(ObTypeDriver, &name, sizeof(DRIVER_OBJECT) + 0x38);
        if (!driver)
            IopFreeName(&name);
    }
    if (!driver) {
        IopUnloadImage(Entry);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    driver->DriverName = name;
    driver->Type = IO_TYPE_DRIVER;
    driver->Size = sizeof(DRIVER_OBJECT);
    driver->DriverStart = Entry->DllBase;
    driver->DriverSize = Entry->SizeOfImage;
    driver->DriverSection = Entry;
    driver->DriverExtension = driver + 1;
    *(PDRIVER_OBJECT *)driver->DriverExtension = driver;
    driver->DriverInit = (PDRIVER_INITIALIZE)Entry->EntryPoint;
    for (i = 0; i <= IRP_MJ_MAXIMUM_FUNCTION; i++)
        driver->MajorFunction[i] = IopInvalidDeviceRequest;
    IopMakeName(&registryPath, "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\",
                &Entry->BaseDllName, TRUE);

    IopStarting = driver;
    status = driver->DriverInit(driver, &registryPath);
    IopStarting = NULL;
    IopFreeName(&registryPath);
    if (!NT_SUCCESS(status)) {
        DbgPrint("KSIM: DriverEntry of %wZ failed with 0x%08lx\n", &Entry->BaseDllName, status);
        IopUnloadImage(Entry);
        IopFreeName(&driver->DriverName);
        ObpDeleteBody(driver);
        return status;
    }
    IopDrivers[IopDriverCount++] = driver;
    return STATUS_SUCCESS;
}

PIRP NTAPI IoAllocateIrp(CCHAR StackSize, BOOLEAN ChargeQuota)
{
    SIZE_T size = sizeof(IRP) + (SIZE_T)StackSize * sizeof(IO_STACK_LOCATION);
    PIRP irp = ExAllocatePoolWithTag(NonPagedPool, size, TAG_IRP);
    (void)ChargeQuota;
    if (!irp)
        return NULL;
    memset(irp, 0, size);
    irp->Type = IO_TYPE_IRP;
    irp->Size = (USHORT)size;
    irp->StackCount = StackSize;
    irp->CurrentLocation = (CCHAR)(StackSize + 1);
    irp->CurrentStackLocation = (PIO_STACK_LOCATION)(irp + 1) + StackSize;
    return irp;
}

VOID NTAPI IoFreeIrp(PIRP Irp) { ExFreePoolWithTag(Irp, TAG_IRP); }

NTSTATUS NTAPI IofCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_STACK_LOCATION sp;
    if (--Irp->CurrentLocation <= 0)
        KeBugCheckEx(NO_MORE_IRP_STACK_LOCATIONS, (ULONG_PTR)Irp, 0, 0, 0);
    sp = --Irp->CurrentStackLocation;
    sp->DeviceObject = DeviceObject;
    return DeviceObject->DriverObject->MajorFunction[sp->MajorFunction](DeviceObject, Irp);
}

NTSTATUS NTAPI IoCallDriver(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    return IofCallDriver(DeviceObject, Irp);
}

static NTSTATUS IopSendIoctl(PDEVICE_OBJECT Device, ULONG Code)
{
    PIRP irp = IoAllocateIrp(Device->StackSize > 0 ? Device->StackSize : 1, FALSE);
    PIO_STACK_LOCATION sp;
    NTSTATUS status;

    if (!irp)
        return STATUS_INSUFFICIENT_RESOURCES;
    memset(IopIoctlBuffer, 0, sizeof(IopIoctlBuffer));
    irp->AssociatedIrp.SystemBuffer = IopIoctlBuffer;
    irp->IoStatus.Status = STATUS_PENDING;
    sp = irp->CurrentStackLocation - 1;
    sp->MajorFunction = IRP_MJ_DEVICE_CONTROL;
    sp->Parameters.DeviceIoControl.OutputBufferLength = IOCTL_BUFFER_SIZE;
    sp->Parameters.DeviceIoControl.InputBufferLength = 0;
    sp->Parameters.DeviceIoControl.IoControlCode = Code;
    status = IofCallDriver(Device, irp);
    IoFreeIrp(irp);
    return status;
}

/* The system loop's IOCTLs (IOCTL_TRACKDEMO_*) mean something only to the drivers
 * written for it; any other driver may give 0x222000 a meaning of its own. */
static BOOLEAN IopSpeaksTrackDemo(PDRIVER_OBJECT Driver)
{
    static const PCWSTR names[] = { (PCWSTR)u"\\Driver\\trackdemo", (PCWSTR)u"\\Driver\\testdrv" };
    UNICODE_STRING name;
    ULONG i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        RtlInitUnicodeString(&name, names[i]);
        if (Driver->DriverName.Buffer && RtlCompareUnicodeString(&Driver->DriverName, &name, TRUE) == 0)
            return TRUE;
    }
    return FALSE;
}

VOID IopTickDrivers(ULONG IoControlCode)
{
    ULONG i;
    for (i = 0; i < IopDriverCount; i++) {
        PDEVICE_OBJECT device = IopDrivers[i]->DeviceObject, next;
        if (!IopSpeaksTrackDemo(IopDrivers[i]))
            continue;
        for (; device; device = next) {
            next = device->NextDevice;
            IopSendIoctl(device, IoControlCode);
        }
    }
}

VOID NTAPI IoDeleteDevice(PDEVICE_OBJECT DeviceObject);

VOID IopUnloadDrivers(VOID)
{
    while (IopDriverCount) {
        PDRIVER_OBJECT driver = IopDrivers[--IopDriverCount];
        if (driver->DriverUnload)
            driver->DriverUnload(driver);
        /* Devices the unload routine left behind go with the driver. */
        while (driver->DeviceObject)
            IoDeleteDevice(driver->DeviceObject);
        IopUnloadImage((PKLDR_DATA_TABLE_ENTRY)driver->DriverSection);
        IopFreeName(&driver->DriverName);
        ObpDeleteBody(driver);
    }
}

/* Request 8: a device control IRP whose stack location is a bad address, sent at
 * DISPATCH_LEVEL straight to the dispatch routine, so the first access to it is made
 * by driver code (IoGetCurrentIrpStackLocation). */
VOID IopBadAccessAtDispatch(VOID)
{
    ULONG i;
    for (i = 0; i < IopDriverCount; i++) {
        PDRIVER_OBJECT driver = IopDrivers[i];
        PDRIVER_DISPATCH dispatch = driver->MajorFunction[IRP_MJ_DEVICE_CONTROL];
        PIRP irp;
        KIRQL old;
        if (!driver->DeviceObject || dispatch == IopInvalidDeviceRequest)
            continue;
        irp = IoAllocateIrp(1, FALSE);
        if (!irp)
            return;
        irp->CurrentLocation = 1;
        irp->CurrentStackLocation = (PIO_STACK_LOCATION)KSIM_BAD_ADDRESS;
        irp->AssociatedIrp.SystemBuffer = IopIoctlBuffer;
        old = KfRaiseIrql(DISPATCH_LEVEL);
        dispatch(driver->DeviceObject, irp);
        KeLowerIrql(old);
        IoFreeIrp(irp);
        return;
    }
    DbgPrint("KSIM: no driver dispatches device control; request 8 ignored\n");
}

NTSTATUS NTAPI IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
    PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType, ULONG DeviceCharacteristics,
    BOOLEAN Exclusive, PDEVICE_OBJECT *DeviceObject)
{
    SIZE_T size = sizeof(DEVICE_OBJECT) + ROUND_UP((SIZE_T)DeviceExtensionSize, 16);
    PDEVICE_OBJECT device;
    ULONG i;
    (void)Exclusive;

    *DeviceObject = NULL;
    if (DeviceName)
        for (i = 0; i < IopDriverCount; i++) {
            PDEVICE_OBJECT d;
            for (d = IopDrivers[i]->DeviceObject; d; d = d->NextDevice)
                if (d->KsimName.Buffer && RtlCompareUnicodeString(&d->KsimName, DeviceName, TRUE) == 0)
                    return STATUS_OBJECT_NAME_COLLISION;
        }
    device = ObpCreateNamedBody(ObTypeDevice, DeviceName, size);
    if (!device)
        return STATUS_INSUFFICIENT_RESOURCES;
    device->Type = IO_TYPE_DEVICE;
    device->Size = (USHORT)size;
    device->DriverObject = DriverObject;
    device->DeviceExtension = DeviceExtensionSize ? (PVOID)(device + 1) : NULL;
    device->DeviceType = DeviceType;
    device->Characteristics = DeviceCharacteristics;
    device->StackSize = 1;
    device->Flags = DO_DEVICE_INITIALIZING;
    KeInitializeDeviceQueue((PVOID)((PUCHAR)device + 0xA0));
    if (DeviceName && !NT_SUCCESS(IopMakeName(&device->KsimName, "", DeviceName, FALSE))) {
        ObpDeleteBody(device);
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    device->NextDevice = DriverObject->DeviceObject;
    DriverObject->DeviceObject = device;
    *DeviceObject = device;
    return STATUS_SUCCESS;
}

VOID NTAPI IoDeleteDevice(PDEVICE_OBJECT DeviceObject)
{
    PDEVICE_OBJECT *link = &DeviceObject->DriverObject->DeviceObject;
    while (*link && *link != DeviceObject)
        link = &(*link)->NextDevice;
    if (*link)
        *link = DeviceObject->NextDevice;
    IopFreeName(&DeviceObject->KsimName);
    ObpDeleteBody(DeviceObject);
}

/* Whether Object is a device object of a loaded driver, or of the one starting. */
BOOLEAN IopIsDevice(PVOID Object)
{
    ULONG i;
    for (i = 0; i <= IopDriverCount; i++) {
        PDRIVER_OBJECT driver = i < IopDriverCount ? IopDrivers[i] : IopStarting;
        PDEVICE_OBJECT d;
        for (d = driver ? driver->DeviceObject : NULL; d; d = d->NextDevice)
            if (d == Object)
                return TRUE;
    }
    return FALSE;
}

/* The device named Name (case-insensitive), for opening it from outside (iomgr2.c). */
PDEVICE_OBJECT IopFindDevice(PCUNICODE_STRING Name)
{
    ULONG i;
    for (i = 0; i < IopDriverCount; i++) {
        PDEVICE_OBJECT d;
        for (d = IopDrivers[i]->DeviceObject; d; d = d->NextDevice)
            if (d->KsimName.Buffer && RtlCompareUnicodeString(&d->KsimName, Name, TRUE) == 0)
                return d;
    }
    return NULL;
}

/* ---- MDLs ---- */

PHYSICAL_ADDRESS NTAPI MmGetPhysicalAddress(PVOID BaseAddress);

static ULONG MiSpanPages(PVOID Va, ULONG Length)
{
    return (ULONG)((((ULONG64)Va & (PAGE_SIZE - 1)) + Length + PAGE_SIZE - 1) / PAGE_SIZE);
}

static VOID MiFillPfns(PMDL Mdl)
{
    ULONG64 *pfn = (ULONG64 *)(Mdl + 1);
    ULONG i, n = MiSpanPages((PUCHAR)Mdl->StartVa + Mdl->ByteOffset, Mdl->ByteCount);
    for (i = 0; i < n && sizeof(MDL) + (i + 1) * 8 <= (ULONG)Mdl->Size; i++)
        pfn[i] = (ULONG64)MmGetPhysicalAddress((PUCHAR)Mdl->StartVa + i * PAGE_SIZE).QuadPart >> 12;
}

PMDL NTAPI IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                         BOOLEAN ChargeQuota, PIRP Irp)
{
    ULONG pages = MiSpanPages(VirtualAddress, Length);
    SIZE_T size = sizeof(MDL) + (SIZE_T)pages * 8;
    PMDL mdl = ExAllocatePoolWithTag(NonPagedPool, size, TAG_MDL);
    (void)ChargeQuota;
    if (!mdl)
        return NULL;
    memset(mdl, 0, size);
    mdl->Size = (CSHORT)size;
    mdl->StartVa = (PVOID)((ULONG64)VirtualAddress & ~(PAGE_SIZE - 1));
    mdl->ByteOffset = (ULONG)((ULONG64)VirtualAddress & (PAGE_SIZE - 1));
    mdl->ByteCount = Length;
    if (Irp && !SecondaryBuffer)
        Irp->MdlAddress = mdl;
    return mdl;
}

VOID NTAPI IoFreeMdl(PMDL Mdl) { ExFreePoolWithTag(Mdl, TAG_MDL); }

VOID NTAPI IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length)
{
    if (Length == 0)
        Length = SourceMdl->ByteCount
            - (ULONG)((PUCHAR)VirtualAddress - ((PUCHAR)SourceMdl->StartVa + SourceMdl->ByteOffset));
    TargetMdl->StartVa = (PVOID)((ULONG64)VirtualAddress & ~(PAGE_SIZE - 1));
    TargetMdl->ByteOffset = (ULONG)((ULONG64)VirtualAddress & (PAGE_SIZE - 1));
    TargetMdl->ByteCount = Length;
    TargetMdl->MdlFlags = (CSHORT)((SourceMdl->MdlFlags & MDL_SOURCE_IS_NONPAGED_POOL) | MDL_PARTIAL);
    TargetMdl->MappedSystemVa = VirtualAddress;
    MiFillPfns(TargetMdl);
}

VOID NTAPI MmBuildMdlForNonPagedPool(PMDL Mdl)
{
    Mdl->MdlFlags |= MDL_SOURCE_IS_NONPAGED_POOL;
    Mdl->MappedSystemVa = (PUCHAR)Mdl->StartVa + Mdl->ByteOffset;
    MiFillPfns(Mdl);
}

VOID NTAPI MmProbeAndLockPages(PMDL Mdl, KPROCESSOR_MODE AccessMode, ULONG Operation)
{
    (void)AccessMode; (void)Operation;
    Mdl->MdlFlags |= MDL_PAGES_LOCKED;
    MiFillPfns(Mdl);
}

VOID NTAPI MmUnlockPages(PMDL Mdl) { Mdl->MdlFlags &= ~MDL_PAGES_LOCKED; }

PVOID NTAPI MmMapLockedPagesSpecifyCache(PMDL Mdl, KPROCESSOR_MODE AccessMode, MEMORY_CACHING_TYPE CacheType,
    PVOID RequestedAddress, ULONG BugCheckOnFailure, ULONG Priority)
{
    (void)AccessMode; (void)CacheType; (void)RequestedAddress; (void)BugCheckOnFailure; (void)Priority;
    Mdl->MappedSystemVa = (PUCHAR)Mdl->StartVa + Mdl->ByteOffset;
    Mdl->MdlFlags |= MDL_MAPPED_TO_SYSTEM_VA;
    return Mdl->MappedSystemVa;
}

PVOID NTAPI MmMapLockedPages(PMDL Mdl, KPROCESSOR_MODE AccessMode)
{
    return MmMapLockedPagesSpecifyCache(Mdl, AccessMode, MmCached, NULL, TRUE, 0);
}

VOID NTAPI MmUnmapLockedPages(PVOID BaseAddress, PMDL Mdl)
{
    (void)BaseAddress;
    Mdl->MdlFlags &= ~MDL_MAPPED_TO_SYSTEM_VA;
}
