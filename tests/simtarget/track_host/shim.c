/*
 * shim.c - the kernel functions Track and trackdemo call, implemented with libc so that
 * both compile and run on the test host (gcc, LP64).
 *
 * Everything observable is kept in Host* globals that the tests read through ctypes:
 * DbgPrint text (HostOutput), a log of every call that creates or releases an object
 * (HostCallLog: "Name 0x<value>" lines), RtlAssert calls (recorded and printed in the
 * kernel's format), and lock-rule violations: any release function, pool free or
 * RtlAssert called while the spin lock is held counts in HostLockViolations.
 * Not a kernel: no IRQL other than the spin lock's, no pool headers, no object manager
 * beyond a handle counter.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ntdecl.h"

#define HOST_OUTPUT_SIZE (1 << 20)

char HostOutput[HOST_OUTPUT_SIZE];
size_t HostOutputLength;
char HostCallLog[HOST_OUTPUT_SIZE];
size_t HostCallLogLength;
int HostAssertCount;
char HostAssertText[256];
char HostAssertFile[256];
unsigned int HostAssertLine;
int HostBreakCount;
int HostLockViolations;
int HostLockHeld;
int HostFailAllocations;
int HostFailClose;
KIRQL HostIrql;
BOOLEAN HostKdFlag;
ULONG_PTR HostNextHandle = 0x80000004;

PBOOLEAN KdDebuggerEnabled = &HostKdFlag;

static void HostAppend(char *buffer, size_t *length, const char *format, va_list args)
{
    size_t room = HOST_OUTPUT_SIZE - *length;
    int n = vsnprintf(buffer + *length, room, format, args);
    if (n > 0) {
        *length += (size_t)n < room ? (size_t)n : room - 1;
    }
}

static void HostLog(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    HostAppend(HostCallLog, &HostCallLogLength, format, args);
    va_end(args);
}

static void HostPrint(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    HostAppend(HostOutput, &HostOutputLength, format, args);
    va_end(args);
}

static void HostReleasing(void)
{
    if (HostLockHeld) {
        HostLockViolations++;
    }
}

void HostReset(void)
{
    HostOutputLength = 0;
    HostOutput[0] = '\0';
    HostCallLogLength = 0;
    HostCallLog[0] = '\0';
    HostAssertCount = 0;
    HostAssertText[0] = HostAssertFile[0] = '\0';
    HostAssertLine = 0;
}

ULONG DbgPrint(PCSTR Format, ...)
{
    va_list args;
    va_start(args, Format);
    HostAppend(HostOutput, &HostOutputLength, Format, args);
    va_end(args);
    return 0;
}

VOID DbgBreakPoint(VOID)
{
    HostBreakCount++;
}

VOID RtlAssert(PVOID VoidFailedAssertion, PVOID VoidFileName, ULONG LineNumber,
               PSTR MutableMessage)
{
    HostReleasing();
    HostAssertCount++;
    snprintf(HostAssertText, sizeof(HostAssertText), "%s", (const char *)VoidFailedAssertion);
    snprintf(HostAssertFile, sizeof(HostAssertFile), "%s", (const char *)VoidFileName);
    HostAssertLine = LineNumber;
    HostPrint("\n*** Assertion failed: %s%s\n***   Source File: %s, line %u\n\n",
              MutableMessage ? MutableMessage : "", (const char *)VoidFailedAssertion,
              (const char *)VoidFileName, LineNumber);
}

KIRQL KeGetCurrentIrql(VOID)
{
    return HostIrql;
}

KIRQL KeAcquireSpinLockRaiseToDpc(PKSPIN_LOCK SpinLock)
{
    KIRQL old = HostIrql;
    if (*SpinLock != 0) {
        HostLockViolations++; /* would deadlock on one CPU */
    }
    *SpinLock = 1;
    HostLockHeld++;
    HostIrql = DISPATCH_LEVEL;
    return old;
}

VOID KeReleaseSpinLock(PKSPIN_LOCK SpinLock, KIRQL NewIrql)
{
    *SpinLock = 0;
    HostLockHeld--;
    HostIrql = NewIrql;
}

static PVOID HostAllocate(const char *name, SIZE_T size)
{
    PVOID p;
    if (HostFailAllocations) {
        HostLog("%s failed\n", name);
        return NULL;
    }
    p = malloc(size ? size : 1);
    HostLog("%s %#lx %lu\n", name, (unsigned long)p, (unsigned long)size);
    return p;
}

static VOID HostRelease(const char *name, PVOID p)
{
    HostReleasing();
    HostLog("%s %#lx\n", name, (unsigned long)p);
    free(p);
}

PVOID ExAllocatePool(POOL_TYPE PoolType, SIZE_T NumberOfBytes)
{
    (void)PoolType;
    return HostAllocate("ExAllocatePool", NumberOfBytes);
}

PVOID ExAllocatePoolWithTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    (void)PoolType;
    /* Track's own records are logged apart so tests can tell them from the driver's. */
    return HostAllocate(Tag == 0x6B637254UL ? "TrackRecord" : "ExAllocatePoolWithTag",
                        NumberOfBytes);
}

PVOID ExAllocatePoolWithQuota(POOL_TYPE PoolType, SIZE_T NumberOfBytes)
{
    (void)PoolType;
    return HostAllocate("ExAllocatePoolWithQuota", NumberOfBytes);
}

PVOID ExAllocatePoolWithQuotaTag(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    (void)PoolType;
    (void)Tag;
    return HostAllocate("ExAllocatePoolWithQuotaTag", NumberOfBytes);
}

VOID ExFreePool(PVOID P)
{
    HostRelease("ExFreePool", P);
}

PVOID MmAllocateContiguousMemory(SIZE_T NumberOfBytes, PHYSICAL_ADDRESS HighestAcceptableAddress)
{
    (void)HighestAcceptableAddress;
    return HostAllocate("MmAllocateContiguousMemory", NumberOfBytes);
}

VOID MmFreeContiguousMemory(PVOID BaseAddress)
{
    HostRelease("MmFreeContiguousMemory", BaseAddress);
}

PVOID MmAllocateNonCachedMemory(SIZE_T NumberOfBytes)
{
    return HostAllocate("MmAllocateNonCachedMemory", NumberOfBytes);
}

VOID MmFreeNonCachedMemory(PVOID BaseAddress, SIZE_T NumberOfBytes)
{
    HostLog("MmFreeNonCachedMemory size %lu\n", (unsigned long)NumberOfBytes);
    HostRelease("MmFreeNonCachedMemory", BaseAddress);
}

PVOID MmMapIoSpace(PHYSICAL_ADDRESS PhysicalAddress, SIZE_T NumberOfBytes,
                   MEMORY_CACHING_TYPE CacheType)
{
    (void)PhysicalAddress;
    (void)CacheType;
    return HostAllocate("MmMapIoSpace", NumberOfBytes);
}

VOID MmUnmapIoSpace(PVOID BaseAddress, SIZE_T NumberOfBytes)
{
    (void)NumberOfBytes;
    HostRelease("MmUnmapIoSpace", BaseAddress);
}

PVOID MmMapLockedPages(PMDL MemoryDescriptorList, KPROCESSOR_MODE AccessMode)
{
    (void)MemoryDescriptorList;
    (void)AccessMode;
    return HostAllocate("MmMapLockedPages", 64);
}

VOID MmUnmapLockedPages(PVOID BaseAddress, PMDL MemoryDescriptorList)
{
    (void)MemoryDescriptorList;
    HostRelease("MmUnmapLockedPages", BaseAddress);
}

PMDL IoAllocateMdl(PVOID VirtualAddress, ULONG Length, BOOLEAN SecondaryBuffer,
                   BOOLEAN ChargeQuota, PIRP Irp)
{
    (void)VirtualAddress;
    (void)SecondaryBuffer;
    (void)ChargeQuota;
    (void)Irp;
    return (PMDL)HostAllocate("IoAllocateMdl", 48 + Length / 4096 * 8);
}

VOID IoBuildPartialMdl(PMDL SourceMdl, PMDL TargetMdl, PVOID VirtualAddress, ULONG Length)
{
    (void)SourceMdl;
    (void)VirtualAddress;
    (void)Length;
    HostLog("IoBuildPartialMdl %#lx\n", (unsigned long)TargetMdl);
}

VOID IoFreeMdl(PMDL Mdl)
{
    HostRelease("IoFreeMdl", Mdl);
}

NTSTATUS IoCreateDevice(PDRIVER_OBJECT DriverObject, ULONG DeviceExtensionSize,
                        PUNICODE_STRING DeviceName, DEVICE_TYPE DeviceType,
                        ULONG DeviceCharacteristics, BOOLEAN Exclusive,
                        PDEVICE_OBJECT *DeviceObject)
{
    /* The real DEVICE_OBJECT is 0x150 bytes; the extension follows it. */
    PUCHAR block;
    PDEVICE_OBJECT device;

    (void)DeviceName;
    (void)DeviceCharacteristics;
    (void)Exclusive;
    block = (PUCHAR)HostAllocate("IoCreateDevice", 0x150 + DeviceExtensionSize);
    if (block == NULL) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    memset(block, 0, 0x150 + DeviceExtensionSize);
    device = (PDEVICE_OBJECT)block;
    device->DriverObject = DriverObject;
    device->DeviceType = DeviceType;
    device->DeviceExtension = block + 0x150;
    device->NextDevice = DriverObject->DeviceObject;
    DriverObject->DeviceObject = device;
    *DeviceObject = device;
    return STATUS_SUCCESS;
}

VOID IoDeleteDevice(PDEVICE_OBJECT DeviceObject)
{
    PDEVICE_OBJECT *link = &DeviceObject->DriverObject->DeviceObject;
    while (*link != NULL && *link != DeviceObject) {
        link = &(*link)->NextDevice;
    }
    if (*link == DeviceObject) {
        *link = DeviceObject->NextDevice;
    }
    HostRelease("IoDeleteDevice", DeviceObject);
}

int HostCompletedIrps;

VOID IofCompleteRequest(PIRP Irp, CCHAR PriorityBoost)
{
    (void)Irp;
    (void)PriorityBoost;
    HostCompletedIrps++;
}

VOID RtlInitUnicodeString(PUNICODE_STRING DestinationString, PCWSTR SourceString)
{
    USHORT n = 0;
    while (SourceString != NULL && SourceString[n] != 0) {
        n++;
    }
    DestinationString->Buffer = (WCHAR *)SourceString;
    DestinationString->Length = (USHORT)(n * sizeof(WCHAR));
    DestinationString->MaximumLength =
        SourceString != NULL ? (USHORT)(DestinationString->Length + sizeof(WCHAR)) : 0;
}

VOID RtlInitAnsiString(PANSI_STRING DestinationString, PCSZ SourceString)
{
    USHORT n = SourceString != NULL ? (USHORT)strlen(SourceString) : 0;
    DestinationString->Buffer = (CHAR *)SourceString;
    DestinationString->Length = n;
    DestinationString->MaximumLength = SourceString != NULL ? (USHORT)(n + 1) : 0;
}

NTSTATUS RtlAnsiStringToUnicodeString(PUNICODE_STRING DestinationString,
                                      PCANSI_STRING SourceString,
                                      BOOLEAN AllocateDestinationString)
{
    USHORT i;
    USHORT count = SourceString->Length;
    if (AllocateDestinationString) {
        DestinationString->Buffer = (WCHAR *)HostAllocate("RtlAnsiStringToUnicodeString",
                                                          (count + 1) * sizeof(WCHAR));
        if (DestinationString->Buffer == NULL) {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        DestinationString->MaximumLength = (USHORT)((count + 1) * sizeof(WCHAR));
    } else if (DestinationString->MaximumLength < count * sizeof(WCHAR)) {
        return (NTSTATUS)0x80000005L; /* STATUS_BUFFER_OVERFLOW */
    }
    for (i = 0; i < count; i++) {
        DestinationString->Buffer[i] = (UCHAR)SourceString->Buffer[i];
    }
    DestinationString->Length = (USHORT)(count * sizeof(WCHAR));
    return STATUS_SUCCESS;
}

VOID RtlFreeUnicodeString(PUNICODE_STRING UnicodeString)
{
    HostRelease("RtlFreeUnicodeString", UnicodeString->Buffer);
    UnicodeString->Buffer = NULL;
    UnicodeString->Length = UnicodeString->MaximumLength = 0;
}

NTSTATUS RtlUnicodeStringToAnsiString(PANSI_STRING DestinationString,
                                      PCUNICODE_STRING SourceString,
                                      BOOLEAN AllocateDestinationString)
{
    USHORT i;
    USHORT count = (USHORT)(SourceString->Length / sizeof(WCHAR));
    if (AllocateDestinationString) {
        DestinationString->Buffer =
            (CHAR *)HostAllocate("RtlUnicodeStringToAnsiString", (SIZE_T)count + 1);
        if (DestinationString->Buffer == NULL) {
            return STATUS_INSUFFICIENT_RESOURCES;
        }
        DestinationString->MaximumLength = (USHORT)(count + 1);
    } else if (DestinationString->MaximumLength <= count) {
        return (NTSTATUS)0x80000005L;
    }
    for (i = 0; i < count; i++) {
        DestinationString->Buffer[i] = (CHAR)SourceString->Buffer[i];
    }
    DestinationString->Buffer[count] = '\0';
    DestinationString->Length = count;
    return STATUS_SUCCESS;
}

VOID RtlFreeAnsiString(PANSI_STRING AnsiString)
{
    HostRelease("RtlFreeAnsiString", AnsiString->Buffer);
    AnsiString->Buffer = NULL;
    AnsiString->Length = AnsiString->MaximumLength = 0;
}

static NTSTATUS HostOpenHandle(const char *name, PHANDLE Handle)
{
    if (HostFailAllocations) {
        HostLog("%s failed\n", name);
        return STATUS_UNSUCCESSFUL;
    }
    *Handle = (HANDLE)HostNextHandle;
    HostNextHandle += 4;
    HostLog("%s %#lx\n", name, (unsigned long)(ULONG_PTR)*Handle);
    return STATUS_SUCCESS;
}

static KEVENT *HostEvent(const char *name, PHANDLE EventHandle)
{
    static UCHAR events[1];
    return NT_SUCCESS(HostOpenHandle(name, EventHandle)) ? (KEVENT *)events : NULL;
}

NTSTATUS ZwClose(HANDLE Handle)
{
    HostReleasing();
    HostLog("ZwClose %#lx\n", (unsigned long)(ULONG_PTR)Handle);
    return HostFailClose ? (NTSTATUS)0xC0000008L : STATUS_SUCCESS;
}

PKEVENT IoCreateNotificationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle)
{
    (void)EventName;
    return HostEvent("IoCreateNotificationEvent", EventHandle);
}

PKEVENT IoCreateSynchronizationEvent(PUNICODE_STRING EventName, PHANDLE EventHandle)
{
    (void)EventName;
    return HostEvent("IoCreateSynchronizationEvent", EventHandle);
}

NTSTATUS ZwCreateDirectoryObject(PHANDLE DirectoryHandle, ACCESS_MASK DesiredAccess,
                                 POBJECT_ATTRIBUTES ObjectAttributes)
{
    (void)DesiredAccess;
    (void)ObjectAttributes;
    return HostOpenHandle("ZwCreateDirectoryObject", DirectoryHandle);
}

NTSTATUS ZwCreateFile(PHANDLE FileHandle, ACCESS_MASK DesiredAccess,
                      POBJECT_ATTRIBUTES ObjectAttributes, PIO_STATUS_BLOCK IoStatusBlock,
                      PLARGE_INTEGER AllocationSize, ULONG FileAttributes, ULONG ShareAccess,
                      ULONG CreateDisposition, ULONG CreateOptions, PVOID EaBuffer,
                      ULONG EaLength)
{
    NTSTATUS status;
    (void)DesiredAccess;
    (void)ObjectAttributes;
    (void)AllocationSize;
    (void)FileAttributes;
    (void)ShareAccess;
    (void)CreateDisposition;
    (void)CreateOptions;
    (void)EaBuffer;
    (void)EaLength;
    status = HostOpenHandle("ZwCreateFile", FileHandle);
    IoStatusBlock->Status = status;
    IoStatusBlock->Information = 1; /* FILE_OPENED */
    return status;
}

NTSTATUS ZwOpenKey(PHANDLE KeyHandle, ACCESS_MASK DesiredAccess,
                   POBJECT_ATTRIBUTES ObjectAttributes)
{
    (void)DesiredAccess;
    (void)ObjectAttributes;
    return HostOpenHandle("ZwOpenKey", KeyHandle);
}

NTSTATUS ZwOpenSection(PHANDLE SectionHandle, ACCESS_MASK DesiredAccess,
                       POBJECT_ATTRIBUTES ObjectAttributes)
{
    (void)DesiredAccess;
    (void)ObjectAttributes;
    return HostOpenHandle("ZwOpenSection", SectionHandle);
}
