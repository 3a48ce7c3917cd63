/*
 * crt.c - more of what ntoskrnl.exe exports to drivers: wide-string C runtime
 * routines, every string comparison (narrow and wide, case-blind or not), the version
 * checks of the Windows 7 DDI (RtlIsNtDdiVersionAvailable,
 * RtlIsServicePackVersionInstalled, RtlGetVersion) and the Windows 10 pool entry
 * points ExAllocatePool2 and ExAllocatePool3 on top of this kernel's pool.
 *
 * Case folding is ASCII only, as in rtl.c.  Behaviour follows the C runtime's and the
 * WDK documentation's descriptions of each routine.
 */
#include "ksimrt.h"

#define NTDDI_THIS_KERNEL 0x06010100UL   /* NTDDI_WIN7SP1: build 7601, service pack 1 */

static WCHAR CrtLowerW(WCHAR c) { return (c >= 'A' && c <= 'Z') ? (WCHAR)(c + 32) : c; }
static int CrtLower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

int __cdecl tolower(int c) { return CrtLower(c); }
int __cdecl toupper(int c) { return (c >= 'a' && c <= 'z') ? c - 32 : c; }
WCHAR __cdecl towlower(WCHAR c) { return CrtLowerW(c); }
WCHAR __cdecl towupper(WCHAR c) { return (c >= 'a' && c <= 'z') ? (WCHAR)(c - 32) : c; }

/* One character of a narrow (Width 1) or wide (Width 2) string, as unsigned. */
static ULONG CrtChar(const UCHAR *P, SIZE_T Width, BOOLEAN Fold)
{
    ULONG c = Width == 1 ? *P : *(const USHORT *)P;
    return Fold ? (ULONG)CrtLower((int)c) : c;
}

/* What str(n)cmp, wcs(n)cmp and their case-blind forms answer: the difference of the
 * first characters that differ among at most N, or 0 once both end. */
static int CrtCompare(const void *A, const void *B, SIZE_T N, SIZE_T Width, BOOLEAN Fold)
{
    const UCHAR *a = A, *b = B;
    for (; N; N--, a += Width, b += Width) {
        ULONG x = CrtChar(a, Width, Fold), y = CrtChar(b, Width, Fold);
        if (x != y || !x)
            return (int)x - (int)y;
    }
    return 0;
}

#define CRT_ALL ((SIZE_T)-1)

int __cdecl strcmp(PCSTR A, PCSTR B) { return CrtCompare(A, B, CRT_ALL, 1, FALSE); }
int __cdecl strncmp(PCSTR A, PCSTR B, SIZE_T N) { return CrtCompare(A, B, N, 1, FALSE); }
int __cdecl _stricmp(PCSTR A, PCSTR B) { return CrtCompare(A, B, CRT_ALL, 1, TRUE); }
int __cdecl _strnicmp(PCSTR A, PCSTR B, SIZE_T N) { return CrtCompare(A, B, N, 1, TRUE); }
int __cdecl wcscmp(PCWSTR A, PCWSTR B) { return CrtCompare(A, B, CRT_ALL, 2, FALSE); }
int __cdecl wcsncmp(PCWSTR A, PCWSTR B, SIZE_T N) { return CrtCompare(A, B, N, 2, FALSE); }
int __cdecl _wcsicmp(PCWSTR A, PCWSTR B) { return CrtCompare(A, B, CRT_ALL, 2, TRUE); }
int __cdecl _wcsnicmp(PCWSTR A, PCWSTR B, SIZE_T N) { return CrtCompare(A, B, N, 2, TRUE); }

/* strstr and wcsstr: where Find first starts in S. */
static PVOID CrtFind(const void *S, const void *Find, SIZE_T Width)
{
    const UCHAR *s = S;
    SIZE_T n = 0;
    while (CrtChar((const UCHAR *)Find + n * Width, Width, FALSE))
        n++;
    if (!n)
        return (PVOID)S;
    for (; CrtChar(s, Width, FALSE); s += Width)
        if (CrtCompare(s, Find, n, Width, FALSE) == 0)
            return (PVOID)s;
    return NULL;
}

/* strncpy and wcsncpy: Src up to its NUL, at most N characters, then NULs up to N. */
static VOID CrtCopy(PVOID Dest, const void *Src, SIZE_T N, SIZE_T Width)
{
    PUCHAR d = Dest;
    const UCHAR *s = Src;
    BOOLEAN ended = FALSE;
    SIZE_T i;
    for (i = 0; i < N * Width; i += Width) {
        ended = ended || !CrtChar(s + i, Width, FALSE);
        if (ended)
            memset(d + i, 0, Width);
        else
            memcpy(d + i, s + i, Width);
    }
}

PCHAR __cdecl strstr(PCSTR S, PCSTR Find) { return CrtFind(S, Find, 1); }
PWSTR __cdecl wcsstr(PCWSTR S, PCWSTR Find) { return CrtFind(S, Find, 2); }
PCHAR __cdecl strncpy(PCHAR Dest, PCSTR Src, SIZE_T N) { CrtCopy(Dest, Src, N, 1); return Dest; }
PWSTR __cdecl wcsncpy(PWSTR Dest, PCWSTR Src, SIZE_T N) { CrtCopy(Dest, Src, N, 2); return Dest; }

PWSTR __cdecl wcschr(PCWSTR S, WCHAR C)
{
    for (;; S++) {
        if (*S == C)
            return (PWSTR)S;
        if (!*S)
            return NULL;
    }
}

PWSTR __cdecl wcsrchr(PCWSTR S, WCHAR C)
{
    PCWSTR last = NULL;
    for (;; S++) {
        if (*S == C)
            last = S;
        if (!*S)
            return (PWSTR)last;
    }
}

PCHAR __cdecl strchr(PCSTR S, int C)
{
    for (;; S++) {
        if (*S == (CHAR)C)
            return (PCHAR)S;
        if (!*S)
            return NULL;
    }
}

PWSTR __cdecl wcscpy(PWSTR Dest, PCWSTR Src)
{
    PWSTR d = Dest;
    while ((*d++ = *Src++) != 0)
        ;
    return Dest;
}

PWSTR __cdecl wcscat(PWSTR Dest, PCWSTR Src)
{
    wcscpy(Dest + wcslen(Dest), Src);
    return Dest;
}

PCHAR __cdecl strcat(PCHAR Dest, PCSTR Src)
{
    strcpy(Dest + strlen(Dest), Src);
    return Dest;
}

SIZE_T __cdecl wcsnlen(PCWSTR S, SIZE_T Max)
{
    SIZE_T n = 0;
    while (n < Max && S[n])
        n++;
    return n;
}

SIZE_T __cdecl strnlen(PCSTR S, SIZE_T Max)
{
    SIZE_T n = 0;
    while (n < Max && S[n])
        n++;
    return n;
}

/* ---- Versions ---- */

BOOLEAN NTAPI RtlIsNtDdiVersionAvailable(ULONG Version)
{
    return Version <= NTDDI_THIS_KERNEL;
}

BOOLEAN NTAPI RtlIsServicePackVersionInstalled(ULONG Version)
{
    /* The same release as this kernel, at or below its service pack. */
    return (Version & 0xFFFF0000UL) == (NTDDI_THIS_KERNEL & 0xFFFF0000UL)
        && ((Version >> 8) & 0xFF) <= ((NTDDI_THIS_KERNEL >> 8) & 0xFF);
}

typedef struct _RTL_OSVERSIONINFOW {
    ULONG dwOSVersionInfoSize, dwMajorVersion, dwMinorVersion, dwBuildNumber, dwPlatformId;
    WCHAR szCSDVersion[128];
} RTL_OSVERSIONINFOW, *PRTL_OSVERSIONINFOW;

typedef struct _RTL_OSVERSIONINFOEXW {
    RTL_OSVERSIONINFOW Base;
    USHORT wServicePackMajor, wServicePackMinor, wSuiteMask;
    UCHAR wProductType, wReserved;
} RTL_OSVERSIONINFOEXW;

NTSTATUS NTAPI RtlGetVersion(PRTL_OSVERSIONINFOW Info)
{
    static const char csd[] = "Service Pack 1";
    ULONG i;
    if (Info->dwOSVersionInfoSize != sizeof(RTL_OSVERSIONINFOW)
        && Info->dwOSVersionInfoSize != sizeof(RTL_OSVERSIONINFOEXW))
        return STATUS_INVALID_PARAMETER;
    Info->dwMajorVersion = 6;
    Info->dwMinorVersion = 1;
    Info->dwBuildNumber = 7601;
    Info->dwPlatformId = 2;              /* VER_PLATFORM_WIN32_NT */
    for (i = 0; i < sizeof(csd); i++)
        Info->szCSDVersion[i] = (WCHAR)csd[i];
    if (Info->dwOSVersionInfoSize == sizeof(RTL_OSVERSIONINFOEXW)) {
        RTL_OSVERSIONINFOEXW *ex = (RTL_OSVERSIONINFOEXW *)Info;
        ex->wServicePackMajor = 1;
        ex->wServicePackMinor = 0;
        ex->wSuiteMask = 0;
        ex->wProductType = 1;            /* VER_NT_WORKSTATION */
    }
    return STATUS_SUCCESS;
}

/* ---- Pool entry points of Windows 10 ---- */

#define POOL_FLAG_USE_QUOTA         0x0000000000000001ULL
#define POOL_FLAG_UNINITIALIZED     0x0000000000000002ULL
#define POOL_FLAG_SESSION           0x0000000000000004ULL
#define POOL_FLAG_CACHE_ALIGNED     0x0000000000000008ULL
#define POOL_FLAG_RAISE_ON_FAILURE  0x0000000000000020ULL
#define POOL_FLAG_NON_PAGED         0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE 0x0000000000000080ULL
#define POOL_FLAG_PAGED             0x0000000000000100ULL
#define POOL_FLAG_REQUIRED_MASK     0x00000000FFFFFFFFULL
#define POOL_FLAG_KNOWN_REQUIRED    0x00000000000007FFULL

/* Exactly one of non-paged, non-paged execute and paged; unknown required flags are
 * refused, unknown optional ones (above bit 31) ignored, as the documentation says. */
PVOID NTAPI ExAllocatePool2(ULONG64 Flags, SIZE_T NumberOfBytes, ULONG Tag)
{
    ULONG64 kinds = Flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_NON_PAGED_EXECUTE | POOL_FLAG_PAGED);
    POOL_TYPE type;
    PVOID p;

    if ((Flags & POOL_FLAG_REQUIRED_MASK & ~POOL_FLAG_KNOWN_REQUIRED) || (kinds & (kinds - 1)) || !kinds
        || Tag == 0 || NumberOfBytes == 0) {
        if (Flags & POOL_FLAG_RAISE_ON_FAILURE)
            ExRaiseStatus(STATUS_INVALID_PARAMETER);
        return NULL;
    }
    type = (Flags & POOL_FLAG_PAGED) ? PagedPool : NonPagedPool;
    if (Flags & POOL_FLAG_CACHE_ALIGNED)
        type = (POOL_TYPE)(type | NonPagedPoolCacheAligned);
    p = ExAllocatePoolWithTag(type, NumberOfBytes, Tag);
    if (!p) {
        if (Flags & POOL_FLAG_RAISE_ON_FAILURE)
            ExRaiseStatus(STATUS_INSUFFICIENT_RESOURCES);
        return NULL;
    }
    if (!(Flags & POOL_FLAG_UNINITIALIZED))
        memset(p, 0, NumberOfBytes);
    return p;
}

/* The extended parameters (priority, secure pool, NUMA node) change nothing here. */
PVOID NTAPI ExAllocatePool3(ULONG64 Flags, SIZE_T NumberOfBytes, ULONG Tag, PVOID ExtendedParameters,
                            ULONG ExtendedParametersCount)
{
    (void)ExtendedParameters; (void)ExtendedParametersCount;
    return ExAllocatePool2(Flags, NumberOfBytes, Tag);
}
