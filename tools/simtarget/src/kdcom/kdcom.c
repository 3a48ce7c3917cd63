/*
 * kdcom.dll - the kernel debugger transport module.
 *
 * In this machine the KD protocol itself runs outside the emulated CPU (the Python kd
 * stub plays kd64 and kdcom).  What stays here is what a running kernel needs from
 * its transport: the break-in poll, which reads the COM1 UART the way kdcom does
 * (line status bit 0, then one byte, 'b' = 0x62 means break in; kd-protocol.md 3.3).
 */
#define KSIM_BUILDING_KDCOM
#include "ki.h"

#define KdPacketTimedOut 1
#define UART_LSR_DATA_READY 0x01
#define BREAKIN_PACKET_BYTE 0x62

static UCHAR KdpReadPort(USHORT Port)
{
    UCHAR v;
    __asm__ volatile("inb %w1, %b0" : "=a"(v) : "Nd"(Port));
    return v;
}

NTSTATUS NTAPI KdDebuggerInitialize0(PVOID LoaderBlock)
{
    (void)LoaderBlock;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI KdDebuggerInitialize1(PVOID LoaderBlock)
{
    (void)LoaderBlock;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI KdD0Transition(VOID) { return STATUS_SUCCESS; }
NTSTATUS NTAPI KdD3Transition(VOID) { return STATUS_SUCCESS; }
NTSTATUS NTAPI KdSave(BOOLEAN SleepTransition) { (void)SleepTransition; return STATUS_SUCCESS; }
NTSTATUS NTAPI KdRestore(BOOLEAN SleepTransition) { (void)SleepTransition; return STATUS_SUCCESS; }

VOID NTAPI KdSendPacket(ULONG PacketType, PVOID MessageHeader, PVOID MessageData, PVOID Context)
{
    (void)PacketType; (void)MessageHeader; (void)MessageData; (void)Context;
}

ULONG NTAPI KdReceivePacket(ULONG PacketType, PVOID MessageHeader, PVOID MessageData,
                            PULONG DataLength, PVOID Context)
{
    (void)MessageHeader; (void)MessageData; (void)DataLength; (void)Context;
    if (PacketType != PACKET_TYPE_KD_POLL_BREAKIN)
        return KdPacketTimedOut;
    if (!(KdpReadPort(KSIM_COM_PORT + 5) & UART_LSR_DATA_READY))
        return KdPacketTimedOut;
    return KdpReadPort(KSIM_COM_PORT) == BREAKIN_PACKET_BYTE ? KdPacketReceived : KdPacketTimedOut;
}

BOOLEAN NTAPI KdcomDllEntry(PVOID Base, ULONG Reason, PVOID Reserved)
{
    (void)Base; (void)Reason; (void)Reserved;
    return TRUE;
}
