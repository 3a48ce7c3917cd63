/*
 * diag.h - the driver's debugging helpers (track.md, "Companion debugging helpers").
 *
 * TRACE prints with DbgPrint in checked builds (DBG=1) and compiles to nothing in free
 * builds (DBG=0). ASSERT and the IRQL assertions go through the kernel's RtlAssert in
 * checked builds only; VERIFY always evaluates its expression and asserts on it in
 * checked builds. BreakIfKdPresent breaks in only when a kernel debugger is attached.
 *
 * Assertions name the source file by TRACK_SOURCE_NAME, which each source file defines
 * before including this header, so that the recorded names do not depend on the
 * directory the build ran in (the images are built reproducibly from a temporary one).
 */
#ifndef DIAG_H
#define DIAG_H

#include "ntdecl.h"

#ifndef DBG
#define DBG 0
#endif

#ifndef TRACK_SOURCE_NAME
#define TRACK_SOURCE_NAME __FILE__
#endif

#if DBG
#define TRACE(...) ((void)DbgPrint(__VA_ARGS__))
/* The text is taken where the caller wrote the expression, before macros in it expand. */
#define ASSERT_WITH_TEXT(e, text) \
    ((void)((e) ? 0 : (RtlAssert((PVOID)(text), (PVOID)TRACK_SOURCE_NAME, __LINE__, NULL), 0)))
#define ASSERT(e) ASSERT_WITH_TEXT(e, #e)
/* A failure with a fixed text and no expression: "*** Assertion failed: <text>". */
#define ASSERT_FAILED_AT(text, file, line) RtlAssert((PVOID)(text), (PVOID)(file), (line), NULL)
#define VERIFY(e) ASSERT_WITH_TEXT(e, #e)
#else
#define TRACE(...) ((void)0)
#define ASSERT(e) ((void)0)
#define ASSERT_FAILED_AT(text, file, line) ((void)0)
#define VERIFY(e) ((void)(e))
#endif

#define ASSERT_FAILED(text) ASSERT_FAILED_AT((text), TRACK_SOURCE_NAME, __LINE__)

/* The lowest IRQL any callee of the function allows goes at its top. */
#define ASSERT_PASSIVE_LEVEL() ASSERT(KeGetCurrentIrql() == PASSIVE_LEVEL)
#define ASSERT_LEQ_APC_LEVEL() ASSERT(KeGetCurrentIrql() <= APC_LEVEL)
#define ASSERT_LEQ_DISPATCH_LEVEL() ASSERT(KeGetCurrentIrql() <= DISPATCH_LEVEL)

/* KdDebuggerEnabled is a pointer to the kernel's BOOLEAN: testing the pointer itself
   would always be true. */
#define BreakIfKdPresent()           \
    do {                             \
        if (*KdDebuggerEnabled) {    \
            DbgBreakPoint();         \
        }                            \
    } while (0)

#endif /* DIAG_H */
