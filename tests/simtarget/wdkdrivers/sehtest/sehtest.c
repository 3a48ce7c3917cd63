/*
 * sehtest.sys - structured exception handling the way WDM drivers use it, written
 * against the WDK headers and built with `kdcon-sim build-driver`.  DriverEntry runs
 * each case and prints one line "seh: <case> <result>" per case; the tests read them.
 */
#include <ntddk.h>

#define SEH_TAG 'hesS'

static volatile LONG SehZero;
static volatile LONG SehOrder;
volatile ULONG SehCaseCount;

__declspec(noinline) static LONG SehTouch(volatile LONG *Address)
{
    return *Address;
}

__declspec(noinline) static LONG SehDivideBy(LONG Divisor)
{
    return 100 / Divisor;
}

__declspec(noinline) static VOID SehRaiseDeep(ULONG Depth)
{
    if (Depth == 0)
        ExRaiseStatus(STATUS_INSUFFICIENT_RESOURCES);
    SehRaiseDeep(Depth - 1);
    SehOrder++;
}

static LONG SehFilterOnly(NTSTATUS Code, NTSTATUS Wanted)
{
    return Code == Wanted ? EXCEPTION_EXECUTE_HANDLER : EXCEPTION_CONTINUE_SEARCH;
}

static VOID SehNullPointer(VOID)
{
    NTSTATUS code = STATUS_SUCCESS;
    __try {
        SehTouch((volatile LONG *)0);
        DbgPrint("seh: null not reached\n");
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        code = GetExceptionCode();
    }
    DbgPrint("seh: null %08lx\n", (ULONG)code);
}

static VOID SehRaiseAcrossFrames(VOID)
{
    /* Non-volatile state of this frame must survive the unwind of the callees. */
    ULONG keep1 = 0x1111, keep2 = 0x2222, keep3 = 0x3333;
    NTSTATUS code = STATUS_SUCCESS;
    __try {
        SehRaiseDeep(5);
    } __except (SehFilterOnly(GetExceptionCode(), STATUS_INSUFFICIENT_RESOURCES)) {
        code = GetExceptionCode();
    }
    DbgPrint("seh: deep %08lx keep=%lx order=%ld\n", (ULONG)code, keep1 + keep2 + keep3, SehOrder);
}

static VOID SehFinallyOrder(VOID)
{
    char trail[8];
    ULONG n = 0;
    __try {
        __try {
            trail[n++] = 'a';
            ExRaiseStatus(STATUS_ACCESS_DENIED);
        } __finally {
            trail[n++] = AbnormalTermination() ? 'f' : 'n';
        }
    } __except (trail[n++] = 'x', EXCEPTION_EXECUTE_HANDLER) {
        trail[n++] = 'h';
    }
    trail[n] = 0;
    DbgPrint("seh: finally %s\n", trail);
}

static VOID SehLeave(VOID)
{
    ULONG steps = 0;
    __try {
        steps++;
        if (steps == 1)
            __leave;
        steps += 100;
    } __finally {
        steps += 10;
    }
    DbgPrint("seh: leave %lu\n", steps);
}

static VOID SehDivide(VOID)
{
    NTSTATUS code = STATUS_SUCCESS;
    __try {
        volatile LONG r = SehDivideBy(SehZero);
        (void)r;
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        code = GetExceptionCode();
    }
    DbgPrint("seh: divide %08lx\n", (ULONG)code);
}

static VOID SehNestedSearch(VOID)
{
    ULONG inner = 0;
    NTSTATUS code = STATUS_SUCCESS;
    __try {
        __try {
            ExRaiseStatus(STATUS_INVALID_PARAMETER);
        } __except (inner++, EXCEPTION_CONTINUE_SEARCH) {
            DbgPrint("seh: nested wrong handler\n");
        }
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        code = GetExceptionCode();
    }
    DbgPrint("seh: nested %08lx inner=%lu\n", (ULONG)code, inner);
}

static LONG SehResumeFilter(PEXCEPTION_POINTERS Pointers)
{
    return Pointers->ExceptionRecord->ExceptionCode == 0x20000001 ? EXCEPTION_CONTINUE_EXECUTION
                                                                   : EXCEPTION_CONTINUE_SEARCH;
}

static VOID SehContinueExecution(VOID)
{
    EXCEPTION_RECORD record;
    ULONG after = 0;
    RtlZeroMemory(&record, sizeof(record));
    record.ExceptionCode = 0x20000001;
    __try {
        RtlRaiseException(&record);
        after = 1;
    } __except (SehResumeFilter(GetExceptionInformation())) {
        after = 2;
    }
    DbgPrint("seh: continue %lu\n", after);
}

static VOID SehProbe(VOID)
{
    NTSTATUS kernel = STATUS_SUCCESS, misaligned = STATUS_SUCCESS, user = STATUS_SUCCESS, empty = STATUS_SUCCESS;
    PVOID pool = ExAllocatePoolWithTag(NonPagedPool, 16, SEH_TAG);
    __try {
        ProbeForRead(pool, 16, 1);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        kernel = GetExceptionCode();
    }
    __try {
        ProbeForWrite((PVOID)0x10001, 8, 4);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        misaligned = GetExceptionCode();
    }
    __try {
        ProbeForRead((PVOID)0x7FFFFFFEFFF0, 0x100, 1);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        user = GetExceptionCode();
    }
    __try {
        ProbeForRead(pool, 0, 8);
    } __except (EXCEPTION_EXECUTE_HANDLER) {
        empty = GetExceptionCode();
    }
    ExFreePoolWithTag(pool, SEH_TAG);
    DbgPrint("seh: probe kernel=%08lx misaligned=%08lx end=%08lx empty=%08lx\n",
             (ULONG)kernel, (ULONG)misaligned, (ULONG)user, (ULONG)empty);
}

VOID SehUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    DbgPrint("seh: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(RegistryPath);
    SehNullPointer();
    SehRaiseAcrossFrames();
    SehFinallyOrder();
    SehLeave();
    SehDivide();
    SehNestedSearch();
    SehContinueExecution();
    SehProbe();
    SehCaseCount = 8;
    DriverObject->DriverUnload = SehUnload;
    DbgPrint("seh: done\n");
    return STATUS_SUCCESS;
}
