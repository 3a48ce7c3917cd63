/*
 * shared.c - KUSER_SHARED_DATA at 0xFFFFF780'00000000, where every Windows x64 kernel
 * keeps it: the clocks (InterruptTime, SystemTime and TickCount as KSYSTEM_TIMEs), the
 * time zone bias, the version and the debugger flag, for the debugger's .time and any
 * code that reads them there.  The machine maps the page (kernel.py); the kernel fills
 * it at startup and brings the clocks up to date on each pass of the system loop and
 * at each clock interrupt, so a reader sees the time of the last update, as Windows'
 * readers see the last clock tick.
 *
 * Offsets: Windows 7 SP1 x64's _KUSER_SHARED_DATA (its public symbols).  A KSYSTEM_TIME
 * is written High2Time, LowPart, High1Time; a reader takes High1Time, LowPart,
 * High2Time and reads again when the two high parts differ.
 */
#include "ki.h"

#define KI_USER_SHARED_DATA 0xFFFFF78000000000ULL

typedef struct _KSIM_SYSTEM_TIME {
    ULONG LowPart;
    LONG High1Time;
    LONG High2Time;
} KSIM_SYSTEM_TIME;

#define SHARED(offset, type) (*(volatile type *)(KI_USER_SHARED_DATA + (offset)))

enum {
    SharedTickCountMultiplier = 0x004,
    SharedInterruptTime = 0x008,
    SharedSystemTime = 0x014,
    SharedTimeZoneBias = 0x020,
    SharedImageNumberLow = 0x02C,
    SharedImageNumberHigh = 0x02E,
    SharedNtSystemRoot = 0x030,
    SharedNtProductType = 0x264,
    SharedProductTypeIsValid = 0x268,
    SharedNtMajorVersion = 0x26C,
    SharedNtMinorVersion = 0x270,
    SharedKdDebuggerEnabled = 0x2D4,
    SharedNumberOfPhysicalPages = 0x2E8,
    SharedTickCount = 0x320,
};

extern ULONG KeTimeIncrement;
extern PFN_NUMBER MmNumberOfPhysicalPages;
ULONG64 KiQueryInterruptTime(VOID);

static VOID KiSetSystemTime(ULONG Offset, ULONG64 Value)
{
    SHARED(Offset + 8, LONG) = (LONG)(Value >> 32);
    SHARED(Offset, ULONG) = (ULONG)Value;
    SHARED(Offset + 4, LONG) = (LONG)(Value >> 32);
}

/* The clocks as of now. */
VOID KiUpdateSharedUserData(VOID)
{
    ULONG64 now = KiQueryInterruptTime();

    KiSetSystemTime(SharedInterruptTime, now);
    KiSetSystemTime(SharedSystemTime, KiLoaderBlock->SystemTimeAtBoot + now);
    KiSetSystemTime(SharedTickCount, now / KeTimeIncrement);
}

/* What does not change while the system runs, then the clocks. */
VOID KiInitializeSharedUserData(VOID)
{
    static const WCHAR root[] = L"C:\\Windows";
    ULONG i;

    /* The tick count in ms is TickCount * TickCountMultiplier >> 24. */
    SHARED(SharedTickCountMultiplier, ULONG) = (ULONG)(((ULONG64)KeTimeIncrement << 24) / 10000);
    KiSetSystemTime(SharedTimeZoneBias, 0);             /* the guest's clock is UTC */
    SHARED(SharedImageNumberLow, USHORT) = 0x8664;      /* IMAGE_FILE_MACHINE_AMD64 */
    SHARED(SharedImageNumberHigh, USHORT) = 0x8664;
    for (i = 0; i < sizeof(root) / sizeof(root[0]); i++)
        SHARED(SharedNtSystemRoot + 2 * i, WCHAR) = root[i];
    SHARED(SharedNtProductType, ULONG) = 1;             /* NtProductWinNt */
    SHARED(SharedProductTypeIsValid, UCHAR) = TRUE;
    SHARED(SharedNtMajorVersion, ULONG) = 6;            /* Windows 7 SP1: 6.1.7601 */
    SHARED(SharedNtMinorVersion, ULONG) = 1;
    SHARED(SharedKdDebuggerEnabled, UCHAR) = KdDebuggerEnabled ? 3 : 0;
    SHARED(SharedNumberOfPhysicalPages, ULONG) = (ULONG)MmNumberOfPhysicalPages;
    KiUpdateSharedUserData();
}
