/*
 * debug.c - how the kernel reaches the debugger: breakpoints (int 3), the debug
 * service interrupt (int 2Dh, service number in eax, followed by int 3 as Windows
 * does), DbgPrint/DbgPrompt and the DbgPrint buffer, RtlAssert, symbol load reports and
 * bug checks.
 *
 * Service arguments follow the x64 kernel: print (1) rcx = text, rdx = length,
 * r8 = component, r9 = level; prompt (2) rcx = prompt, rdx = prompt length,
 * r8 = response buffer, r9 = its size, eax returns the response length; load (3) and
 * unload (4) symbols rcx = PSTRING path, rdx = PKD_SYMBOLS_INFO.
 */
#include "ki.h"

__asm__(".text\n"
        ".globl DebugService\n"
        "DebugService:\n"
        "    movl %ecx, %eax\n"
        "    movq %rdx, %rcx\n"
        "    movq %r8, %rdx\n"
        "    movq %r9, %r8\n"
        "    movq 0x28(%rsp), %r9\n"
        "    int $0x2d\n"
        "    int3\n"
        "    ret\n"
        ".globl DbgBreakPoint\n"
        "DbgBreakPoint:\n"
        "    int3\n"
        "    ret\n"
        ".globl DbgBreakPointWithStatus\n"
        "DbgBreakPointWithStatus:\n"
        ".globl RtlpBreakWithStatusInstruction\n"
        "RtlpBreakWithStatusInstruction:\n"
        "    int3\n"
        "    ret\n");

#define DPFLTR_MASK 0x80000000UL
#define DBG_PRINT_MAX 512
/* A free build's DbgPrint buffer holds 4 KB (the debugger documentation, "The DbgPrint
 * Buffer"). */
#define KDPRINT_BUFFER_SIZE 0x1000

/* The DbgPrint buffer, as kd64 keeps it: every message that passes the filter is
 * copied in before it is sent, the write pointer wraps to the start and the rollover
 * count says how often.  KdPrintCircularBufferPtr and KdPrintBufferSize name the
 * buffer in use (a resized one; here always the default). */
CHAR KdPrintCircularBuffer[KDPRINT_BUFFER_SIZE];
PCHAR KdPrintCircularBufferPtr = KdPrintCircularBuffer;
ULONG KdPrintBufferSize = KDPRINT_BUFFER_SIZE;
PCHAR KdPrintWritePointer = KdPrintCircularBuffer;
ULONG KdPrintRolloverCount;

static VOID KdLogDbgPrint(PCSTR Text, SIZE_T Length)
{
    PCHAR end = KdPrintCircularBufferPtr + KdPrintBufferSize;

    while (Length) {
        SIZE_T room = (SIZE_T)(end - KdPrintWritePointer);
        SIZE_T n = Length < room ? Length : room;
        memcpy(KdPrintWritePointer, Text, n);
        KdPrintWritePointer += n;
        Text += n;
        Length -= n;
        if (KdPrintWritePointer >= end) {
            KdPrintWritePointer = KdPrintCircularBufferPtr;
            KdPrintRolloverCount++;
        }
    }
}

/* Component filter: every level prints unless cleared here (Kd_DEFAULT_Mask). */
ULONG Kd_DEFAULT_Mask = 0xFFFFFFFFUL;

static BOOLEAN KdpPrintEnabled(ULONG Level)
{
    ULONG mask = Level > 31 ? (Level & ~DPFLTR_MASK) : (1UL << Level);
    return Level == 0 || (Kd_DEFAULT_Mask & mask) != 0;
}

ULONG NTAPI vDbgPrintExWithPrefix(PCSTR Prefix, ULONG ComponentId, ULONG Level,
                                   PCSTR Format, __builtin_va_list Args)
{
    CHAR buffer[DBG_PRINT_MAX];
    SIZE_T used = 0;
    int n;

    if (!KdpPrintEnabled(Level))
        return STATUS_SUCCESS;
    if (Prefix) {
        used = strlen(Prefix);
        if (used > sizeof(buffer) - 1)
            used = sizeof(buffer) - 1;
        memcpy(buffer, Prefix, used);
    }
    n = _vsnprintf(buffer + used, sizeof(buffer) - used, Format, Args);
    /* A string cut to the buffer still goes out, as its first 512 characters. */
    used = (n < 0 || (SIZE_T)n >= sizeof(buffer) - used) ? sizeof(buffer) : used + (SIZE_T)n;
    KdLogDbgPrint(buffer, used);
    DebugService(BREAKPOINT_PRINT, buffer, used, (PVOID)(ULONG_PTR)ComponentId, Level);
    return STATUS_SUCCESS;
}

ULONG NTAPI vDbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, __builtin_va_list Args)
{
    return vDbgPrintExWithPrefix("", ComponentId, Level, Format, Args);
}

ULONG __cdecl DbgPrintEx(ULONG ComponentId, ULONG Level, PCSTR Format, ...)
{
    __builtin_va_list args;
    ULONG status;
    __builtin_va_start(args, Format);
    status = vDbgPrintExWithPrefix("", ComponentId, Level, Format, args);
    __builtin_va_end(args);
    return status;
}

ULONG __cdecl DbgPrint(PCSTR Format, ...)
{
    __builtin_va_list args;
    ULONG status;
    __builtin_va_start(args, Format);
    status = vDbgPrintExWithPrefix("", (ULONG)-1, 0, Format, args);
    __builtin_va_end(args);
    return status;
}

ULONG NTAPI DbgPrompt(PCSTR Prompt, PCHAR Response, ULONG Length)
{
    return (ULONG)DebugService(BREAKPOINT_PROMPT, (PVOID)Prompt, strlen(Prompt), Response, Length);
}

static VOID KdpSymbolService(ULONG Service, PSTRING FileName, PVOID ImageBase, ULONG_PTR ProcessId)
{
    KD_SYMBOLS_INFO info;
    PUCHAR base = ImageBase;
    ULONG nt = *(ULONG *)(base + 0x3C);

    info.BaseOfDll = ImageBase;
    info.ProcessId = ProcessId;
    info.CheckSum = *(ULONG *)(base + nt + 24 + 64);      /* OptionalHeader.CheckSum */
    info.SizeOfImage = *(ULONG *)(base + nt + 24 + 56);   /* OptionalHeader.SizeOfImage */
    DebugService(Service, FileName, (ULONG_PTR)&info, NULL, 0);
}

VOID NTAPI DbgLoadImageSymbols(PSTRING FileName, PVOID ImageBase, ULONG_PTR ProcessId)
{
    KdpSymbolService(BREAKPOINT_LOAD_SYMBOLS, FileName, ImageBase, ProcessId);
}

VOID NTAPI DbgUnLoadImageSymbols(PSTRING FileName, PVOID ImageBase, ULONG_PTR ProcessId)
{
    KdpSymbolService(BREAKPOINT_UNLOAD_SYMBOLS, FileName, ImageBase, ProcessId);
}

/* RtlAssert: the real message and prompt; b breaks then returns, i returns, p and t
 * end the current request of the system loop (the only "thread" there is). */
VOID NTAPI RtlAssert(PVOID FailedAssertion, PVOID FileName, ULONG LineNumber, PCHAR Message)
{
    CHAR response[2];

    for (;;) {
        DbgPrint("\n*** Assertion failed: %s%s\n***   Source File: %s, line %lu\n\n",
                 Message ? Message : "", (PCSTR)FailedAssertion, (PCSTR)FileName, LineNumber);
        response[0] = 0;
        DbgPrompt("Break, Ignore, Terminate Process or Terminate Thread (bipt)? ",
                  response, sizeof(response));
        switch (response[0]) {
        case 'B': case 'b':
            DbgBreakPoint();
            return;
        case 'I': case 'i':
            return;
        case 'P': case 'p':
        case 'T': case 't':
            KiAbandonRequest();
        default:
            break;
        }
    }
}

DECLSPEC_NORETURN VOID NTAPI KeBugCheckEx(ULONG Code, ULONG_PTR P1, ULONG_PTR P2,
                                          ULONG_PTR P3, ULONG_PTR P4)
{
    KiPcr.Irql = HIGH_LEVEL;
    KiBugCheckData[0] = Code;
    KiBugCheckData[1] = P1;
    KiBugCheckData[2] = P2;
    KiBugCheckData[3] = P3;
    KiBugCheckData[4] = P4;
    DbgPrint("\n*** Fatal System Error: 0x%08lx\n                       (0x%p,0x%p,0x%p,0x%p)\n\n",
             Code, (PVOID)P1, (PVOID)P2, (PVOID)P3, (PVOID)P4);
    DbgBreakPointWithStatus(DBG_STATUS_BUGCHECK_FIRST);
    HalSimControl(KSIM_CONTROL_HALT, Code, 0);
    for (;;)
        DbgBreakPointWithStatus(DBG_STATUS_BUGCHECK_SECOND);
}

DECLSPEC_NORETURN VOID NTAPI KeBugCheck(ULONG Code)
{
    KeBugCheckEx(Code, 0, 0, 0, 0);
}
