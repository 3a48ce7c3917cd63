/*
 * wdm.h - mingw-w64's wdm.h, then what the WDK's wdm.h declares that mingw's does not
 * (Windows 10 pool flags and ExAllocatePool2, MdlMappingNoExecute, ...), for drivers
 * built by `kdcon-sim build-driver` (kdcon_wdk.h explains the set-up).
 */
#ifndef KDCON_WDK_WDM_H
#define KDCON_WDK_WDM_H

/* The WDK declares the object types without dllimport, so the import library's symbol
 * is the import slot itself (CONSTANT in ntoskrnl.def) and one dereference gives the
 * POBJECT_TYPE the kernel's variable holds; mingw's dllimport adds a second one. */
#define ExEventObjectType KdconMingwExEventObjectType
#define PsProcessType KdconMingwPsProcessType
#define PsThreadType KdconMingwPsThreadType
#include_next <wdm.h>
#undef ExEventObjectType
#undef PsProcessType
#undef PsThreadType
extern POBJECT_TYPE *ExEventObjectType;
extern POBJECT_TYPE *PsProcessType;
extern POBJECT_TYPE *PsThreadType;

#undef KeGetCurrentIrql
#undef KeLowerIrql
#undef KfRaiseIrql
#undef KeRaiseIrql
#undef KeRaiseIrqlToDpcLevel
#undef KeRaiseIrqlToSynchLevel
#undef KeQuerySystemTime
#undef KeQueryTickCount
#undef KeQueryInterruptTime
NTKERNELAPI KIRQL NTAPI KeGetCurrentIrql(VOID);
NTKERNELAPI VOID NTAPI KeLowerIrql(KIRQL NewIrql);
NTKERNELAPI KIRQL NTAPI KfRaiseIrql(KIRQL NewIrql);
NTKERNELAPI KIRQL NTAPI KeRaiseIrqlToDpcLevel(VOID);
NTKERNELAPI KIRQL NTAPI KeRaiseIrqlToSynchLevel(VOID);
NTKERNELAPI VOID NTAPI KeQuerySystemTime(PLARGE_INTEGER CurrentTime);
NTKERNELAPI VOID NTAPI KeQueryTickCount(PLARGE_INTEGER TickCount);
NTKERNELAPI ULONGLONG NTAPI KeQueryInterruptTime(VOID);
#define KeRaiseIrql(a, b) (*(b) = KfRaiseIrql(a))

#ifndef MdlMappingNoExecute
#define MdlMappingNoExecute 0x40000000
#endif
#ifndef MdlMappingNoWrite
#define MdlMappingNoWrite 0x80000000
#endif

typedef ULONG64 POOL_FLAGS;
#define POOL_FLAG_REQUIRED_START          0x0000000000000001ULL
#define POOL_FLAG_USE_QUOTA               0x0000000000000001ULL
#define POOL_FLAG_UNINITIALIZED           0x0000000000000002ULL
#define POOL_FLAG_SESSION                 0x0000000000000004ULL
#define POOL_FLAG_CACHE_ALIGNED           0x0000000000000008ULL
#define POOL_FLAG_RESERVED1               0x0000000000000010ULL
#define POOL_FLAG_RAISE_ON_FAILURE        0x0000000000000020ULL
#define POOL_FLAG_NON_PAGED               0x0000000000000040ULL
#define POOL_FLAG_NON_PAGED_EXECUTE       0x0000000000000080ULL
#define POOL_FLAG_PAGED                   0x0000000000000100ULL
#define POOL_FLAG_RESERVED2               0x0000000000000200ULL
#define POOL_FLAG_RESERVED3               0x0000000000000400ULL
#define POOL_FLAG_REQUIRED_END            0x0000000080000000ULL
#define POOL_FLAG_OPTIONAL_START          0x0000000100000000ULL
#define POOL_FLAG_SPECIAL_POOL            0x0000000100000000ULL
#define POOL_FLAG_OPTIONAL_END            0x8000000000000000ULL

NTKERNELAPI PVOID NTAPI ExAllocatePool2(POOL_FLAGS Flags, SIZE_T NumberOfBytes, ULONG Tag);

#ifndef NonPagedPoolNx
#define NonPagedPoolNx ((POOL_TYPE)512)
#endif
#ifndef POOL_NX_ALLOCATION
#define POOL_NX_ALLOCATION 512
#endif

/* The WDK's inline helpers of Windows 10 (wdm.h), written from their documented
 * behaviour: zeroed pool from ExAllocatePool2 and the pool type it maps to. */
static __inline PVOID ExAllocatePoolZero(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    POOL_FLAGS flags = (PoolType & 1) ? POOL_FLAG_PAGED : POOL_FLAG_NON_PAGED;
    return ExAllocatePool2(flags, NumberOfBytes, Tag);
}

static __inline PVOID ExAllocatePoolUninitialized(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag);
}

static __inline PVOID ExAllocatePoolQuotaZero(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    PVOID p = ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes, Tag);
    if (p)
        RtlZeroMemory(p, NumberOfBytes);
    return p;
}

static __inline PVOID ExAllocatePoolQuotaUninitialized(POOL_TYPE PoolType, SIZE_T NumberOfBytes, ULONG Tag)
{
    return ExAllocatePoolWithQuotaTag(PoolType, NumberOfBytes, Tag);
}

/* mingw declares these as its wdmlib stand-ins (WdmlibRtl...); the kernel exports them. */
NTSYSAPI BOOLEAN NTAPI RtlIsNtDdiVersionAvailable(ULONG Version);
NTSYSAPI BOOLEAN NTAPI RtlIsServicePackVersionInstalled(ULONG Version);

/* Declared by the WDK's wdm.h; mingw declares them in ntifs.h only or not at all. */
NTSYSAPI VOID NTAPI RtlRaiseException(PEXCEPTION_RECORD ExceptionRecord);
NTSYSAPI VOID NTAPI RtlCaptureContext(PCONTEXT ContextRecord);
NTSYSAPI VOID NTAPI RtlUnwindEx(PVOID TargetFrame, PVOID TargetIp, PEXCEPTION_RECORD ExceptionRecord,
                                PVOID ReturnValue, PCONTEXT ContextRecord, PVOID HistoryTable);

static __inline VOID ExInitializeDriverRuntime(ULONG RuntimeFlags) { (void)RuntimeFlags; }
#define DrvRtPoolNxOptIn 0x00000001

#endif
