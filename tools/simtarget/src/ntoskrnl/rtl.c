/*
 * rtl.c - C runtime and Rtl string and memory routines a driver expects of the
 * kernel, and the printf engine behind DbgPrint (_vsnprintf and family).
 *
 * Format support: flags - 0 + space #, width and precision (numbers or *), length
 * h hh l ll I64 I32 I z, conversions d i u x X o c C s S p Z wZ and %%.
 * No floating point (kernel code does not use it).
 */
#include "ki.h"

PVOID __cdecl memset(PVOID Dest, int Value, SIZE_T Count)
{
    PUCHAR d = Dest;
    while (Count--)
        *d++ = (UCHAR)Value;
    return Dest;
}

PVOID __cdecl memcpy(PVOID Dest, const void *Src, SIZE_T Count)
{
    PUCHAR d = Dest;
    const UCHAR *s = Src;
    while (Count--)
        *d++ = *s++;
    return Dest;
}

PVOID __cdecl memmove(PVOID Dest, const void *Src, SIZE_T Count)
{
    PUCHAR d = Dest;
    const UCHAR *s = Src;
    if (d <= s || d >= s + Count)
        return memcpy(Dest, Src, Count);
    while (Count--)
        d[Count] = s[Count];
    return Dest;
}

int __cdecl memcmp(const void *A, const void *B, SIZE_T Count)
{
    const UCHAR *a = A, *b = B;
    for (; Count; Count--, a++, b++)
        if (*a != *b)
            return *a < *b ? -1 : 1;
    return 0;
}

SIZE_T __cdecl strlen(PCSTR S) { PCSTR p = S; while (*p) p++; return (SIZE_T)(p - S); }
SIZE_T __cdecl wcslen(PCWSTR S) { PCWSTR p = S; while (*p) p++; return (SIZE_T)(p - S); }

PCHAR __cdecl strcpy(PCHAR Dest, PCSTR Src)
{
    PCHAR d = Dest;
    do {
        *d++ = *Src;
    } while (*Src++);
    return Dest;
}

PCHAR __cdecl strrchr(PCSTR S, int C)
{
    PCSTR last = NULL;
    for (; *S; S++)
        if (*S == (CHAR)C)
            last = S;
    return (PCHAR)(C == 0 ? S : last);
}

/* ---- printf engine ---- */

typedef struct { PCHAR Buffer; SIZE_T Size; SIZE_T Used; } KSIM_OUT;

static void OutChar(KSIM_OUT *o, CHAR c)
{
    if (o->Used + 1 < o->Size)
        o->Buffer[o->Used] = c;
    o->Used++;
}

static void OutPadded(KSIM_OUT *o, PCSTR s, SIZE_T n, int width, BOOLEAN left, CHAR pad)
{
    int fill = width > (int)n ? width - (int)n : 0;
    if (!left)
        while (fill-- > 0) OutChar(o, pad);
    while (n--) OutChar(o, *s++);
    if (left)
        while (fill-- > 0) OutChar(o, ' ');
}

static void OutNumber(KSIM_OUT *o, ULONG64 v, BOOLEAN negative, ULONG base, BOOLEAN upper,
                      int width, int precision, BOOLEAN left, BOOLEAN zero, CHAR sign, PCSTR prefix)
{
    CHAR digits[24], body[48];
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0, len = 0, i;
    do { digits[n++] = set[v % base]; v /= base; } while (v);
    if (precision == 0 && n == 1 && digits[0] == '0')
        n = 0;
    if (negative) body[len++] = '-';
    else if (sign) body[len++] = sign;
    for (; prefix && *prefix; prefix++) body[len++] = *prefix;
    if (zero && !left && precision < 0) {
        int want = width - len - n;
        while (want-- > 0 && len < 40) body[len++] = '0';
    }
    for (i = n; i < precision && len < 40; i++) body[len++] = '0';
    while (n) body[len++] = digits[--n];
    OutPadded(o, body, (SIZE_T)len, width, left, ' ');
}

int __cdecl _vsnprintf(PCHAR Buffer, SIZE_T Count, PCSTR f, __builtin_va_list ap)
{
    KSIM_OUT o = { Buffer, Count, 0 };

    for (; *f; f++) {
        BOOLEAN left = FALSE, zero = FALSE, alt = FALSE, wide = FALSE;
        CHAR sign = 0;
        int width = 0, precision = -1, size = 4;   /* argument size in bytes */

        if (*f != '%') { OutChar(&o, *f); continue; }
        for (f++;; f++) {
            if (*f == '-') left = TRUE;
            else if (*f == '0') zero = TRUE;
            else if (*f == '+') sign = '+';
            else if (*f == ' ') { if (!sign) sign = ' '; }
            else if (*f == '#') alt = TRUE;
            else break;
        }
        if (*f == '*') { width = __builtin_va_arg(ap, int); if (width < 0) { left = TRUE; width = -width; } f++; }
        else while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
        if (*f == '.') {
            f++;
            precision = 0;
            if (*f == '*') { precision = __builtin_va_arg(ap, int); f++; }
            else while (*f >= '0' && *f <= '9') precision = precision * 10 + (*f++ - '0');
        }
        for (;; f++) {
            if (*f == 'h') { wide = FALSE; if (f[1] == 'h') f++; size = 4; }
            else if (*f == 'l') { wide = TRUE; if (f[1] == 'l') { f++; size = 8; } }
            else if (*f == 'w') wide = TRUE;
            else if (*f == 'z') size = 8;
            else if (*f == 'I' && f[1] == '6' && f[2] == '4') { size = 8; f += 2; }
            else if (*f == 'I' && f[1] == '3' && f[2] == '2') { size = 4; f += 2; }
            else if (*f == 'I') size = 8;
            else break;
        }
        switch (*f) {
        case 'd': case 'i': {
            LONG64 v = size == 8 ? __builtin_va_arg(ap, LONG64) : (LONG64)__builtin_va_arg(ap, int);
            OutNumber(&o, v < 0 ? (ULONG64)-v : (ULONG64)v, v < 0, 10, FALSE, width, precision, left, zero, sign, NULL);
            break;
        }
        case 'u': case 'x': case 'X': case 'o': {
            ULONG64 v = size == 8 ? __builtin_va_arg(ap, ULONG64) : (ULONG64)__builtin_va_arg(ap, unsigned int);
            ULONG base = *f == 'u' ? 10 : *f == 'o' ? 8 : 16;
            PCSTR prefix = (alt && v && base == 16) ? (*f == 'X' ? "0X" : "0x") : (alt && base == 8) ? "0" : NULL;
            OutNumber(&o, v, FALSE, base, *f == 'X', width, precision, left, zero, 0, prefix);
            break;
        }
        case 'p':
            OutNumber(&o, (ULONG64)__builtin_va_arg(ap, PVOID), FALSE, 16, TRUE, 16, -1, FALSE, TRUE, 0, NULL);
            break;
        case 'c': case 'C': {
            CHAR c = (CHAR)__builtin_va_arg(ap, int);
            OutPadded(&o, &c, 1, width, left, ' ');
            break;
        }
        case 's': case 'S': {
            BOOLEAN w = (*f == 'S') ? TRUE : wide;
            PVOID p = __builtin_va_arg(ap, PVOID);
            if (!p) { OutPadded(&o, "(null)", 6, width, left, ' '); break; }
            if (w) {
                PCWSTR s = p;
                SIZE_T n = wcslen(s), i;
                CHAR tmp[256];
                if (precision >= 0 && (SIZE_T)precision < n) n = (SIZE_T)precision;
                if (n > sizeof(tmp)) n = sizeof(tmp);
                for (i = 0; i < n; i++) tmp[i] = s[i] < 0x80 ? (CHAR)s[i] : '?';
                OutPadded(&o, tmp, n, width, left, ' ');
            } else {
                PCSTR s = p;
                SIZE_T n = strlen(s);
                if (precision >= 0 && (SIZE_T)precision < n) n = (SIZE_T)precision;
                OutPadded(&o, s, n, width, left, ' ');
            }
            break;
        }
        case 'Z': {
            PVOID p = __builtin_va_arg(ap, PVOID);
            if (!p) { OutPadded(&o, "(null)", 6, width, left, ' '); break; }
            if (wide) {
                PUNICODE_STRING u = p;
                SIZE_T i, n = u->Length / 2;
                for (i = 0; i < n; i++) OutChar(&o, u->Buffer[i] < 0x80 ? (CHAR)u->Buffer[i] : '?');
            } else {
                PANSI_STRING a = p;
                OutPadded(&o, a->Buffer, a->Length, width, left, ' ');
            }
            break;
        }
        case '%':
            OutChar(&o, '%');
            break;
        case 0:
            f--;
            break;
        default:
            OutChar(&o, '%');
            OutChar(&o, *f);
            break;
        }
    }
    if (Count) {
        if (o.Used < Count)
            Buffer[o.Used] = 0;
        else
            return -1;   /* truncated: the buffer is full and not terminated (MSVC) */
    }
    return (int)o.Used;
}

int __cdecl _snprintf(PCHAR Buffer, SIZE_T Count, PCSTR Format, ...)
{
    __builtin_va_list ap;
    int n;
    __builtin_va_start(ap, Format);
    n = _vsnprintf(Buffer, Count, Format, ap);
    __builtin_va_end(ap);
    return n;
}

int __cdecl vsprintf(PCHAR Buffer, PCSTR Format, __builtin_va_list Args)
{
    return _vsnprintf(Buffer, (SIZE_T)0x7FFFFFFF, Format, Args);
}

int __cdecl sprintf(PCHAR Buffer, PCSTR Format, ...)
{
    __builtin_va_list ap;
    int n;
    __builtin_va_start(ap, Format);
    n = vsprintf(Buffer, Format, ap);
    __builtin_va_end(ap);
    return n;
}

/* ---- Rtl memory ---- */

VOID NTAPI RtlCopyMemory(PVOID Dest, const void *Src, SIZE_T Length) { memmove(Dest, Src, Length); }
VOID NTAPI RtlMoveMemory(PVOID Dest, const void *Src, SIZE_T Length) { memmove(Dest, Src, Length); }
VOID NTAPI RtlZeroMemory(PVOID Dest, SIZE_T Length) { memset(Dest, 0, Length); }
VOID NTAPI RtlFillMemory(PVOID Dest, SIZE_T Length, UCHAR Fill) { memset(Dest, Fill, Length); }

SIZE_T NTAPI RtlCompareMemory(const void *A, const void *B, SIZE_T Length)
{
    const UCHAR *a = A, *b = B;
    SIZE_T i = 0;
    while (i < Length && a[i] == b[i])
        i++;
    return i;
}

/* ---- Rtl strings ---- */

VOID NTAPI RtlInitUnicodeString(PUNICODE_STRING Dest, PCWSTR Source)
{
    SIZE_T n = Source ? wcslen(Source) * sizeof(WCHAR) : 0;
    if (n > 0xFFFC)
        n = 0xFFFC;
    Dest->Length = (USHORT)n;
    Dest->MaximumLength = Source ? (USHORT)(n + sizeof(WCHAR)) : 0;
    Dest->Buffer = (PWSTR)Source;
}

VOID NTAPI RtlInitAnsiString(PANSI_STRING Dest, PCSTR Source)
{
    SIZE_T n = Source ? strlen(Source) : 0;
    if (n > 0xFFFE)
        n = 0xFFFE;
    Dest->Length = (USHORT)n;
    Dest->MaximumLength = Source ? (USHORT)(n + 1) : 0;
    Dest->Buffer = (PCHAR)Source;
}

VOID NTAPI RtlInitString(PSTRING Dest, PCSTR Source) { RtlInitAnsiString(Dest, Source); }

VOID NTAPI RtlCopyUnicodeString(PUNICODE_STRING Dest, PCUNICODE_STRING Source)
{
    USHORT n;
    if (!Source) { Dest->Length = 0; return; }
    n = Source->Length < Dest->MaximumLength ? Source->Length : Dest->MaximumLength;
    memmove(Dest->Buffer, Source->Buffer, n);
    Dest->Length = n;
    if (n + sizeof(WCHAR) <= Dest->MaximumLength)
        Dest->Buffer[n / sizeof(WCHAR)] = 0;
}

VOID NTAPI RtlCopyString(PSTRING Dest, const STRING *Source)
{
    USHORT n;
    if (!Source) { Dest->Length = 0; return; }
    n = Source->Length < Dest->MaximumLength ? Source->Length : Dest->MaximumLength;
    memmove(Dest->Buffer, Source->Buffer, n);
    Dest->Length = n;
    if (n < Dest->MaximumLength)
        Dest->Buffer[n] = 0;
}

static WCHAR RtlpUpcase(WCHAR c) { return (c >= 'a' && c <= 'z') ? (WCHAR)(c - 32) : c; }
WCHAR NTAPI RtlUpcaseUnicodeChar(WCHAR c) { return RtlpUpcase(c); }

LONG NTAPI RtlCompareUnicodeString(PCUNICODE_STRING S1, PCUNICODE_STRING S2, BOOLEAN CaseInsensitive)
{
    USHORT n1 = S1->Length / 2, n2 = S2->Length / 2, i;
    for (i = 0; i < n1 && i < n2; i++) {
        WCHAR a = S1->Buffer[i], b = S2->Buffer[i];
        if (CaseInsensitive) { a = RtlpUpcase(a); b = RtlpUpcase(b); }
        if (a != b)
            return (LONG)a - (LONG)b;
    }
    return (LONG)n1 - (LONG)n2;
}

BOOLEAN NTAPI RtlEqualUnicodeString(PCUNICODE_STRING S1, PCUNICODE_STRING S2, BOOLEAN CaseInsensitive)
{
    return S1->Length == S2->Length && RtlCompareUnicodeString(S1, S2, CaseInsensitive) == 0;
}

NTSTATUS NTAPI RtlAppendUnicodeStringToString(PUNICODE_STRING Dest, PCUNICODE_STRING Source)
{
    if ((ULONG)Dest->Length + Source->Length > Dest->MaximumLength)
        return (NTSTATUS)0xC0000023L;   /* STATUS_BUFFER_TOO_SMALL */
    memmove((PUCHAR)Dest->Buffer + Dest->Length, Source->Buffer, Source->Length);
    Dest->Length = (USHORT)(Dest->Length + Source->Length);
    if (Dest->Length + sizeof(WCHAR) <= Dest->MaximumLength)
        Dest->Buffer[Dest->Length / 2] = 0;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI RtlAppendUnicodeToString(PUNICODE_STRING Dest, PCWSTR Source)
{
    UNICODE_STRING s;
    RtlInitUnicodeString(&s, Source);
    return RtlAppendUnicodeStringToString(Dest, &s);
}

#define TAG_USTR 'RTSU'
#define TAG_ASTR 'RTSA'

NTSTATUS NTAPI RtlAnsiStringToUnicodeString(PUNICODE_STRING Dest, PCANSI_STRING Source, BOOLEAN Allocate)
{
    ULONG i, bytes = (ULONG)Source->Length * sizeof(WCHAR);
    if (bytes + sizeof(WCHAR) > 0xFFFF)
        return STATUS_INVALID_PARAMETER;
    if (Allocate) {
        Dest->Buffer = ExAllocatePoolWithTag(PagedPool, bytes + sizeof(WCHAR), TAG_USTR);
        if (!Dest->Buffer)
            return STATUS_NO_MEMORY;
        Dest->MaximumLength = (USHORT)(bytes + sizeof(WCHAR));
    } else if (bytes > Dest->MaximumLength) {
        return STATUS_BUFFER_OVERFLOW;
    }
    for (i = 0; i < Source->Length; i++)
        Dest->Buffer[i] = (UCHAR)Source->Buffer[i];
    Dest->Length = (USHORT)bytes;
    if (bytes + sizeof(WCHAR) <= Dest->MaximumLength)
        Dest->Buffer[i] = 0;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI RtlUnicodeStringToAnsiString(PANSI_STRING Dest, PCUNICODE_STRING Source, BOOLEAN Allocate)
{
    ULONG i, n = Source->Length / sizeof(WCHAR);
    if (Allocate) {
        Dest->Buffer = ExAllocatePoolWithTag(PagedPool, n + 1, TAG_ASTR);
        if (!Dest->Buffer)
            return STATUS_NO_MEMORY;
        Dest->MaximumLength = (USHORT)(n + 1);
    } else if (n > Dest->MaximumLength) {
        return STATUS_BUFFER_OVERFLOW;
    }
    for (i = 0; i < n; i++)
        Dest->Buffer[i] = Source->Buffer[i] < 0x100 ? (CHAR)Source->Buffer[i] : '?';
    Dest->Length = (USHORT)n;
    if (n < Dest->MaximumLength)
        Dest->Buffer[n] = 0;
    return STATUS_SUCCESS;
}

VOID NTAPI RtlFreeUnicodeString(PUNICODE_STRING S)
{
    if (S->Buffer)
        ExFreePoolWithTag(S->Buffer, TAG_USTR);
    S->Buffer = NULL;
    S->Length = S->MaximumLength = 0;
}

VOID NTAPI RtlFreeAnsiString(PANSI_STRING S)
{
    if (S->Buffer)
        ExFreePoolWithTag(S->Buffer, TAG_ASTR);
    S->Buffer = NULL;
    S->Length = S->MaximumLength = 0;
}

PVOID NTAPI RtlImageNtHeader(PVOID Base)
{
    PUCHAR b = Base;
    if (!b || b[0] != 'M' || b[1] != 'Z')
        return NULL;
    return b + *(ULONG *)(b + 0x3C);
}

/* MmGetSystemRoutineAddress: looks the name up in this image's own export table. */
extern UCHAR __ImageBase[];

PVOID NTAPI MmGetSystemRoutineAddress(PUNICODE_STRING SystemRoutineName)
{
    PUCHAR base = __ImageBase;
    PUCHAR nt = RtlImageNtHeader(base);
    ULONG dir_rva = *(ULONG *)(nt + 24 + 112);      /* OptionalHeader.DataDirectory[EXPORT] */
    ULONG *names, *functions, i, j, n = SystemRoutineName->Length / sizeof(WCHAR);
    USHORT *ordinals;

    if (!dir_rva)
        return NULL;
    names = (ULONG *)(base + *(ULONG *)(base + dir_rva + 0x20));
    functions = (ULONG *)(base + *(ULONG *)(base + dir_rva + 0x1C));
    ordinals = (USHORT *)(base + *(ULONG *)(base + dir_rva + 0x24));
    for (i = 0; i < *(ULONG *)(base + dir_rva + 0x18); i++) {
        PCSTR name = (PCSTR)(base + names[i]);
        for (j = 0; j < n && name[j] && (WCHAR)(UCHAR)name[j] == SystemRoutineName->Buffer[j]; j++)
            ;
        if (j == n && name[j] == 0)
            return base + functions[ordinals[i]];
    }
    return NULL;
}
