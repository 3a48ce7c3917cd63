/*
 * testdrv.sys - a small driver the machine tests run: it prints from DriverEntry,
 * creates one device, allocates small and large pool, answers the system loop's
 * device-control IRPs and asserts on request, so that every path a driver takes
 * through the kernel is exercised without the Track library.
 *
 * Ground truth for tests: DriverEntry prints "testdrv: hello sum=1596 kd=1\n"
 * (Fib(0..15) summed; KdDebuggerEnabled read through the pointer the kernel exports),
 * every IOCTL_TRACKDEMO_TICK increments TestTickCount and writes TestWatched, the
 * LEAK request allocates 40 bytes tagged 'Leak', OVERWRITE asserts "TestGuard == 0"
 * and prints "testdrv: assert returned\n" if the assertion returns, STATS prints the
 * tick count, and the unload routine prints "testdrv: unload\n".
 */
typedef unsigned char UCHAR, BOOLEAN, *PBOOLEAN;
typedef unsigned short USHORT, WCHAR;
typedef unsigned long ULONG;
typedef long NTSTATUS;
typedef unsigned long long SIZE_T;
typedef void *PVOID;

typedef struct _UNICODE_STRING { USHORT Length, MaximumLength; WCHAR *Buffer; } UNICODE_STRING;
typedef struct _IO_STACK_LOCATION {
    UCHAR MajorFunction, MinorFunction, Flags, Control;
    ULONG Pad0;
    ULONG OutputBufferLength, Pad1, InputBufferLength, Pad2, IoControlCode, Pad3;
    PVOID Type3InputBuffer;
    PVOID DeviceObject, FileObject, CompletionRoutine, Context;
} IO_STACK_LOCATION;
typedef struct _IRP {
    UCHAR Head[0x18];
    PVOID SystemBuffer;          /* 0x18 */
    UCHAR Pad0[0x10];
    NTSTATUS Status;             /* 0x30 */
    ULONG Pad1;
    SIZE_T Information;          /* 0x38 */
    UCHAR Pad2[0xB8 - 0x40];
    IO_STACK_LOCATION *CurrentStackLocation; /* 0xB8 */
    UCHAR Tail[0x10];
} IRP;
typedef struct _DRIVER_OBJECT {
    UCHAR Head[0x68];
    void (__stdcall *DriverUnload)(struct _DRIVER_OBJECT *);
    NTSTATUS (__stdcall *MajorFunction[28])(PVOID, IRP *);
} DRIVER_OBJECT;

__declspec(dllimport) ULONG __cdecl DbgPrint(const char *Format, ...);
__declspec(dllimport) PVOID __stdcall ExAllocatePoolWithTag(int PoolType, SIZE_T Bytes, ULONG Tag);
__declspec(dllimport) void __stdcall ExFreePoolWithTag(PVOID P, ULONG Tag);
__declspec(dllimport) NTSTATUS __stdcall IoCreateDevice(DRIVER_OBJECT *Driver, ULONG ExtensionSize,
    UNICODE_STRING *Name, ULONG Type, ULONG Characteristics, BOOLEAN Exclusive, PVOID *Device);
__declspec(dllimport) void __stdcall IoDeleteDevice(PVOID Device);
__declspec(dllimport) void __stdcall IofCompleteRequest(IRP *Irp, char Boost);
__declspec(dllimport) void __stdcall RtlAssert(PVOID Failed, PVOID File, ULONG Line, char *Message);
__declspec(dllimport) void __stdcall RtlInitUnicodeString(UNICODE_STRING *Dest, const WCHAR *Source);
extern PBOOLEAN KdDebuggerEnabled;

#define IOCTL_TRACKDEMO_TICK      0x222000
#define IOCTL_TRACKDEMO_LEAK      0x222004
#define IOCTL_TRACKDEMO_OVERWRITE 0x222008
#define IOCTL_TRACKDEMO_STATS     0x22200C
#define IRP_MJ_DEVICE_CONTROL     0x0E

volatile ULONG TestTickCount;
volatile ULONG TestWatched;
volatile ULONG TestGuard = 0x5A;
volatile ULONG TestLastIoctl;
PVOID TestDevice;
PVOID TestBigBlock;

static const WCHAR TestDeviceName[] = { '\\', 'D', 'e', 'v', 'i', 'c', 'e', '\\',
                                        'K', 's', 'i', 'm', 'T', 'e', 's', 't', 0 };

__declspec(noinline) ULONG Fib(ULONG n) { return n < 2 ? n : Fib(n - 1) + Fib(n - 2); }

__declspec(noinline) void TestOverwrite(void)
{
    if (TestGuard != 0)
        RtlAssert("TestGuard == 0", "testdrv.c", 42, 0);
    DbgPrint("testdrv: assert returned\n");
}

NTSTATUS __stdcall TestDispatch(PVOID Device, IRP *Irp)
{
    ULONG code = Irp->CurrentStackLocation->IoControlCode;
    (void)Device;
    TestLastIoctl = code;
    switch (code) {
    case IOCTL_TRACKDEMO_TICK:
        TestTickCount++;
        TestWatched = TestTickCount;
        break;
    case IOCTL_TRACKDEMO_LEAK:
        ExAllocatePoolWithTag(0, 40, 'kaeL');
        break;
    case IOCTL_TRACKDEMO_OVERWRITE:
        TestOverwrite();
        break;
    case IOCTL_TRACKDEMO_STATS:
        DbgPrint("testdrv: ticks=%lu\n", TestTickCount);
        break;
    default:
        break;
    }
    Irp->Status = 0;
    Irp->Information = 0;
    IofCompleteRequest(Irp, 0);
    return 0;
}

void __stdcall TestUnload(DRIVER_OBJECT *Driver)
{
    (void)Driver;
    DbgPrint("testdrv: unload\n");
    if (TestBigBlock)
        ExFreePoolWithTag(TestBigBlock, 'tseT');
    IoDeleteDevice(TestDevice);
}

NTSTATUS __stdcall DriverEntry(DRIVER_OBJECT *Driver, UNICODE_STRING *RegistryPath)
{
    UNICODE_STRING name;
    ULONG *buf = ExAllocatePoolWithTag(0, 16 * sizeof(ULONG), 'tseT');
    ULONG i, sum = 0;
    NTSTATUS status;
    (void)RegistryPath;

    if (!buf)
        return (NTSTATUS)0xC000009A;
    for (i = 0; i < 16; i++) {
        buf[i] = Fib(i);
        sum += buf[i];
    }
    ExFreePoolWithTag(buf, 'tseT');
    DbgPrint("testdrv: hello sum=%lu kd=%u\n", sum, (unsigned)*KdDebuggerEnabled);
    TestBigBlock = ExAllocatePoolWithTag(0, 0x2345, 'tseT');
    RtlInitUnicodeString(&name, TestDeviceName);
    status = IoCreateDevice(Driver, 0x20, &name, 0x22, 0, 0, &TestDevice);
    if (status < 0)
        return status;
    Driver->MajorFunction[IRP_MJ_DEVICE_CONTROL] = TestDispatch;
    Driver->DriverUnload = TestUnload;
    return 0;
}
