/*
 * crtw.c - the wide-character printf routines ntoskrnl exports: swprintf_s,
 * vswprintf_s, _snwprintf and _vsnwprintf.
 *
 * They share the narrow engine behind DbgPrint (rtl.c's _vsnprintf): the wide format is
 * rewritten as a narrow one with each string conversion's width made explicit (in a
 * wide format %s and %c are wide and %S and %C narrow; %hs, %ls, %ws and %wZ say so
 * themselves), formatted, and widened.  Characters above 0x7F in wide arguments come
 * out as '?', as DbgPrint prints them; formats and results are limited to 511
 * characters.  Rules from the CRT documentation: swprintf_s takes the buffer size in
 * characters, always terminates, and for a NULL buffer or format, a zero size, or a
 * result that does not fit, writes an empty string (when it can) and returns -1;
 * _snwprintf returns the count written, or -1 when the result was cut to Count
 * characters (then it is not terminated).
 */
#include "ki.h"

#define CRTW_MAX 512

/* The narrow format for Format: 0 when it does not fit. */
static BOOLEAN CrtwNarrowFormat(PCWSTR Format, PCHAR Out, SIZE_T Room)
{
    SIZE_T n = 0;
    while (*Format) {
        WCHAR c = *Format++;
        if (n + 4 >= Room)
            return FALSE;
        if (c != '%') {
            Out[n++] = c < 0x80 ? (CHAR)c : '?';
            continue;
        }
        Out[n++] = '%';
        while (*Format && n + 4 < Room) {
            c = *Format;
            if (c == 's' || c == 'c') {
                Out[n++] = 'l';             /* a bare %s or %c of a wide format is wide */
                Out[n++] = (CHAR)c;
                Format++;
                break;
            }
            if (c == 'S' || c == 'C') {
                Out[n++] = 'h';
                Out[n++] = (CHAR)(c + ('a' - 'A'));
                Format++;
                break;
            }
            if (c == 'h' || c == 'l' || c == 'w') {
                /* An explicit width: copy it with its conversion, the engine knows them. */
                Out[n++] = (CHAR)c;
                Format++;
                if (*Format == 's' || *Format == 'c' || *Format == 'S' || *Format == 'C') {
                    Out[n++] = (CHAR)(*Format++ | 0x20);
                    break;
                }
                continue;
            }
            Out[n++] = c < 0x80 ? (CHAR)c : '?';
            Format++;
            if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == ' ' || c == '#' || c == '.' ||
                  c == '*' || c == 'I' || c == 'z'))
                break;
        }
    }
    Out[n] = 0;
    return TRUE;
}

/* Formats into Buffer (Count characters); the narrow engine's return value. */
static int CrtwFormat(PWSTR Buffer, SIZE_T Count, PCWSTR Format, __builtin_va_list Args)
{
    CHAR format[CRTW_MAX], text[CRTW_MAX];
    SIZE_T room = Count < CRTW_MAX ? Count : CRTW_MAX;
    int n, i;

    if (!CrtwNarrowFormat(Format, format, sizeof(format)))
        return -1;
    n = _vsnprintf(text, room, format, Args);
    for (i = 0; i < (n < 0 ? (int)room : n + 1) && (SIZE_T)i < Count; i++)
        Buffer[i] = (WCHAR)(UCHAR)text[i];
    return n;
}

int __cdecl _vsnwprintf(PWSTR Buffer, SIZE_T Count, PCWSTR Format, __builtin_va_list Args)
{
    int n = CrtwFormat(Buffer, Count, Format, Args);
    return n < 0 ? -1 : n;
}

int __cdecl _snwprintf(PWSTR Buffer, SIZE_T Count, PCWSTR Format, ...)
{
    __builtin_va_list ap;
    int n;
    __builtin_va_start(ap, Format);
    n = _vsnwprintf(Buffer, Count, Format, ap);
    __builtin_va_end(ap);
    return n;
}

int __cdecl vswprintf_s(PWSTR Buffer, SIZE_T SizeInWords, PCWSTR Format, __builtin_va_list Args)
{
    int n;
    if (!Buffer || !SizeInWords)
        return -1;
    if (!Format) {
        Buffer[0] = 0;
        return -1;
    }
    n = CrtwFormat(Buffer, SizeInWords, Format, Args);
    if (n < 0 || (SIZE_T)n >= SizeInWords) {
        Buffer[0] = 0;
        return -1;
    }
    return n;
}

int __cdecl swprintf_s(PWSTR Buffer, SIZE_T SizeInWords, PCWSTR Format, ...)
{
    __builtin_va_list ap;
    int n;
    __builtin_va_start(ap, Format);
    n = vswprintf_s(Buffer, SizeInWords, Format, ap);
    __builtin_va_end(ap);
    return n;
}
