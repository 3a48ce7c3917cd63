/*
 * kdcon_wdk.h - what unmodified WDK driver sources need, beyond the DDK headers of
 * Debian's mingw-w64-common, to build with clang-cl for the simulated kernel.
 * `kdcon-sim build-driver` includes it before every source (/FI); the wdm.h beside it
 * wraps mingw's and adds the declarations that must follow it.
 *
 * What it settles (each point is what the WDK's own headers do):
 * - try/except/finally/leave are the WDK's excpt.h names for __try/__except/...;
 * - _Dispatch_type_ and other SAL annotations the samples use expand to nothing;
 * - POOL_TAGGING keeps ExAllocatePoolWithTag a tagged call (mingw drops the tag
 *   without it);
 * - RtlIsNtDdiVersionAvailable is the kernel's export, not mingw's wdmlib stand-in;
 * - mingw's InterlockedBitTestAndSet/Reset stay private to each source (below).
 */
#ifndef KDCON_WDK_H
#define KDCON_WDK_H

#ifndef __cplusplus
#define try __try
#define except __except
#define finally __finally
#define leave __leave
#endif

#ifndef _Dispatch_type_
#define _Dispatch_type_(x)
#endif
#ifndef _IRQL_requires_max_
#define _IRQL_requires_max_(x)
#endif
#ifndef _IRQL_requires_
#define _IRQL_requires_(x)
#endif
#ifndef _IRQL_requires_same_
#define _IRQL_requires_same_
#endif
#ifndef _Function_class_
#define _Function_class_(x)
#endif
#ifndef _Use_decl_annotations_
#define _Use_decl_annotations_
#endif
#ifndef _Requires_lock_held_
#define _Requires_lock_held_(x)
#endif
#ifndef _Releases_lock_
#define _Releases_lock_(x)
#endif
#ifndef _Acquires_lock_
#define _Acquires_lock_(x)
#endif
#ifndef _IRQL_raises_
#define _IRQL_raises_(x)
#endif
#ifndef _IRQL_saves_
#define _IRQL_saves_
#endif
#ifndef _IRQL_restores_
#define _IRQL_restores_
#endif
#ifndef _Analysis_assume_
#define _Analysis_assume_(x)
#endif
#ifndef _Analysis_assume_lock_held_
#define _Analysis_assume_lock_held_(x)
#endif
#ifndef _Analysis_assume_lock_not_held_
#define _Analysis_assume_lock_not_held_(x)
#endif
#ifndef __drv_dispatchType
#define __drv_dispatchType(x)
#endif

#ifndef POOL_TAGGING
#define POOL_TAGGING 1
#endif

/* The kernel exports it (ntoskrnl.exe, Windows 7 and later). */
#define RtlIsNtDdiVersionAvailable RtlIsNtDdiVersionAvailable
#define RtlIsServicePackVersionInstalled RtlIsServicePackVersionInstalled

/* mingw's intrin-impl.h declares InterlockedBitTestAndSet/Reset as external before
 * wdm.h defines them "static __inline__", which makes wdm.h's definitions external:
 * two sources then define one symbol.  Marked as already defined, intrin-impl.h
 * leaves them out.  The IRQL and time inlines of mingw's wdm.h are renamed here into
 * private leftovers, and wdm.h (beside this file) declares the kernel's exports
 * instead (mingw's inlines read CR8 and KUSER_SHARED_DATA; the simulated kernel keeps
 * IRQL in KPCR.Irql, and its exports are what drivers call). */
#define __INTRINSIC_DEFINED_InterlockedBitTestAndSet
#define __INTRINSIC_DEFINED_InterlockedBitTestAndReset
#define KeGetCurrentIrql KdconWdkKeGetCurrentIrql
#define KeLowerIrql KdconWdkKeLowerIrql
#define KfRaiseIrql KdconWdkKfRaiseIrql
#define KeRaiseIrqlToDpcLevel KdconWdkKeRaiseIrqlToDpcLevel
#define KeRaiseIrqlToSynchLevel KdconWdkKeRaiseIrqlToSynchLevel

#endif
