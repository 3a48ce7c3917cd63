/* The second source of twofiles.sys: it uses the interlocked bit tests too. */
#include <ntddk.h>

extern LONG TwoFlags;

ULONG TwoOther(VOID)
{
    return InterlockedBitTestAndReset(&TwoFlags, 3) ? 7 : 0;
}
