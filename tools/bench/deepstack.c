/*
 * deepstack.sys - a call chain ten routines deep, for the console benchmark's `k`
 * figure (tools/bench/console.py builds it with kdcon-sim build-driver).
 *
 * DriverEntry starts a system thread that calls Depth1 every 10 ms; Depth1 calls
 * Depth2 and so on down to Depth10, each a routine of its own that is never inlined,
 * with frames of different shapes (locals, a buffer, saved registers, a call through
 * a pointer), as a driver's dispatch path has. A breakpoint on Depth10 stops the
 * thread with the whole chain, the thread routine and the kernel's thread start
 * below it on the stack.
 */
#include <ntddk.h>

#define NOINLINE __declspec(noinline)
#define MS(n) ((LONGLONG)(n) * -10000)

DRIVER_INITIALIZE DriverEntry;
KSTART_ROUTINE DeepWorker;

typedef ULONG (*STEP)(ULONG);

static volatile ULONG Calls;

NOINLINE ULONG Depth10(ULONG value)
{
    Calls++;
    return value * 3 + 1;
}

NOINLINE ULONG Depth9(ULONG value)
{
    return Depth10(value + 9) ^ 9;
}

NOINLINE ULONG Depth8(ULONG value)
{
    volatile UCHAR buffer[48];
    ULONG i;

    for (i = 0; i < sizeof(buffer); i++)
        buffer[i] = (UCHAR)(value + i);
    return Depth9(value + buffer[value % sizeof(buffer)]);
}

NOINLINE ULONG Depth7(ULONG value)
{
    STEP next = Depth8;
    return next(value + 7);
}

NOINLINE ULONG Depth6(ULONG value)
{
    ULONG a = value * 5, b = value ^ 0x55, c = value + 6;
    ULONG result = Depth7(a + b);
    return result + a + b + c;
}

NOINLINE ULONG Depth5(ULONG value)
{
    volatile ULONG64 wide[12];
    wide[value % 12] = value;
    return Depth6((ULONG)wide[value % 12] + 5);
}

NOINLINE ULONG Depth4(ULONG value)
{
    return Depth5(value + 4) - 4;
}

NOINLINE ULONG Depth3(ULONG value)
{
    LARGE_INTEGER now;
    KeQuerySystemTime(&now);
    return Depth4(value + (now.LowPart & 1));
}

NOINLINE ULONG Depth2(ULONG value)
{
    return Depth3(value + 2) + 2;
}

NOINLINE ULONG Depth1(ULONG value)
{
    return Depth2(value + 1);
}

VOID DeepWorker(PVOID Context)
{
    LARGE_INTEGER interval;
    ULONG value = (ULONG)(ULONG_PTR)Context;

    interval.QuadPart = MS(10);
    for (;;) {
        value = Depth1(value);
        KeDelayExecutionThread(KernelMode, FALSE, &interval);
    }
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    HANDLE thread;
    NTSTATUS status;

    UNREFERENCED_PARAMETER(DriverObject);
    UNREFERENCED_PARAMETER(RegistryPath);
    status = PsCreateSystemThread(&thread, THREAD_ALL_ACCESS, NULL, NULL, NULL, DeepWorker, (PVOID)1);
    if (!NT_SUCCESS(status))
        return status;
    ZwClose(thread);
    DbgPrint("deepstack: worker started\n");
    return STATUS_SUCCESS;
}
