/*
 * hal.dll - the hardware abstraction layer of the simulated machine.
 *
 * Port I/O, the performance counter and the simulator control port.  There is no
 * interrupt controller: the machine delivers the clock interrupt itself through the
 * kernel's IDT (see ki.h, KSIM_VECTOR_CLOCK).
 */
#define KSIM_BUILDING_HAL
#include "ki.h"

/* HalSimControl(Command, Arg1, Arg2): out to the control port with the command in
 * eax, Arg1 in r9 and Arg2 in r8 (ki.h, KSIM_PORT_CONTROL). */
__asm__(".text\n"
        ".globl HalSimControl\n"
        "HalSimControl:\n"
        "    movl %ecx, %eax\n"
        "    movq %rdx, %r9\n"
        "    movl $0x5D8, %edx\n"
        "    outl %eax, %dx\n"
        "    ret\n");

UCHAR NTAPI READ_PORT_UCHAR(PUCHAR Port)
{
    UCHAR v;
    __asm__ volatile("inb %w1, %b0" : "=a"(v) : "Nd"((USHORT)(ULONG_PTR)Port));
    return v;
}

USHORT NTAPI READ_PORT_USHORT(PUSHORT Port)
{
    USHORT v;
    __asm__ volatile("inw %w1, %w0" : "=a"(v) : "Nd"((USHORT)(ULONG_PTR)Port));
    return v;
}

ULONG NTAPI READ_PORT_ULONG(PULONG Port)
{
    ULONG v;
    __asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"((USHORT)(ULONG_PTR)Port));
    return v;
}

VOID NTAPI WRITE_PORT_UCHAR(PUCHAR Port, UCHAR Value)
{
    __asm__ volatile("outb %b0, %w1" : : "a"(Value), "Nd"((USHORT)(ULONG_PTR)Port));
}

VOID NTAPI WRITE_PORT_USHORT(PUSHORT Port, USHORT Value)
{
    __asm__ volatile("outw %w0, %w1" : : "a"(Value), "Nd"((USHORT)(ULONG_PTR)Port));
}

VOID NTAPI WRITE_PORT_ULONG(PULONG Port, ULONG Value)
{
    __asm__ volatile("outl %0, %w1" : : "a"(Value), "Nd"((USHORT)(ULONG_PTR)Port));
}

/* Interrupt time in 100 ns units, derived by the machine from its instruction count. */
static ULONG64 HalpReadTime(VOID)
{
    ULONG low = READ_PORT_ULONG((PULONG)KSIM_PORT_TIME_LOW);
    ULONG high = READ_PORT_ULONG((PULONG)KSIM_PORT_TIME_HIGH);
    return ((ULONG64)high << 32) | low;
}

LARGE_INTEGER NTAPI KeQueryPerformanceCounter(PLARGE_INTEGER Frequency)
{
    LARGE_INTEGER now;
    if (Frequency)
        Frequency->QuadPart = 10000000;
    now.QuadPart = (LONGLONG)HalpReadTime();
    return now;
}

/* Waits until the instruction-based clock has advanced; the wait is deterministic. */
VOID NTAPI KeStallExecutionProcessor(ULONG MicroSeconds)
{
    ULONG64 until = HalpReadTime() + (ULONG64)MicroSeconds * 10;
    while (HalpReadTime() < until)
        ;
}

BOOLEAN NTAPI HalInitSystem(ULONG Phase, PVOID LoaderBlock)
{
    (void)Phase;
    (void)LoaderBlock;
    return TRUE;
}

DECLSPEC_NORETURN VOID NTAPI HalReturnToFirmware(ULONG Routine)
{
    (void)Routine;
    HalSimControl(KSIM_CONTROL_REBOOT, 0, 0);
    for (;;)
        ;
}

ULONG NTAPI HalGetInterruptVector(ULONG InterfaceType, ULONG BusNumber, ULONG Level,
                                  ULONG Vector, PKIRQL Irql, KAFFINITY *Affinity)
{
    (void)InterfaceType; (void)BusNumber; (void)Level;
    if (Irql)
        *Irql = (KIRQL)(Vector >> 4);
    if (Affinity)
        *Affinity = 1;
    return Vector;
}

BOOLEAN NTAPI HalDllEntry(PVOID Base, ULONG Reason, PVOID Reserved)
{
    (void)Base; (void)Reason; (void)Reserved;
    return TRUE;
}
