/*
 * except.c - structured exception handling as x64 Windows dispatches it: function
 * tables from each loaded image's .pdata (KLDR_DATA_TABLE_ENTRY.ExceptionTable),
 * virtual unwinding of UNWIND_INFO, RtlDispatchException (first pass: language
 * handlers asked frame by frame), RtlUnwindEx (second pass: termination handlers run,
 * then the target frame resumes), __C_specific_handler (the C compiler's scope
 * tables for __try/__except/__finally), RtlRaiseException and ExRaiseStatus, and
 * ProbeForRead/ProbeForWrite, which raise as the documentation says.
 *
 * CPU faults reach KiDispatchFault from the fault handlers in ke.c with the context
 * the machine saved at the fault.  What is not here: vectored handlers, user-mode
 * dispatch, the second-chance report to the debugger (an unhandled exception bug
 * checks, and the debugger sees the bug check).
 *
 * Sources (facts only): the x64 exception-handling documentation (UNWIND_INFO,
 * UNWIND_CODE operations, chained info, language handlers, DISPATCHER_CONTEXT),
 * the documentation of RtlUnwindEx, RtlVirtualUnwind, RtlLookupFunctionEntry,
 * ProbeForRead and ProbeForWrite.
 */
#include "ksimrt.h"

#define MAX_FRAMES 512
#define UWOP_PUSH_NONVOL     0
#define UWOP_ALLOC_LARGE     1
#define UWOP_ALLOC_SMALL     2
#define UWOP_SET_FPREG       3
#define UWOP_SAVE_NONVOL     4
#define UWOP_SAVE_NONVOL_FAR 5
#define UWOP_EPILOG          6
#define UWOP_SPARE_CODE      7
#define UWOP_SAVE_XMM128     8
#define UWOP_SAVE_XMM128_FAR 9
#define UWOP_PUSH_MACHFRAME  10

typedef struct _UNWIND_INFO {
    UCHAR VersionAndFlags;
    UCHAR SizeOfProlog;
    UCHAR CountOfCodes;
    UCHAR FrameRegisterAndOffset;
    USHORT UnwindCode[1];
} UNWIND_INFO, *PUNWIND_INFO;

typedef struct _SCOPE_TABLE {
    ULONG Count;
    struct { ULONG BeginAddress, EndAddress, HandlerAddress, JumpTarget; } ScopeRecord[1];
} SCOPE_TABLE, *PSCOPE_TABLE;

typedef LONG (*PEXCEPTION_FILTER)(PEXCEPTION_POINTERS, PVOID);
typedef VOID (*PTERMINATION_HANDLER)(BOOLEAN, PVOID);

/* ---- Function tables ---- */

PRUNTIME_FUNCTION NTAPI RtlLookupFunctionEntry(ULONG64 ControlPc, PULONG64 ImageBase, PVOID HistoryTable)
{
    PLIST_ENTRY link;
    (void)HistoryTable;
    *ImageBase = 0;
    for (link = PsLoadedModuleList.Flink; link && link != &PsLoadedModuleList; link = link->Flink) {
        PKLDR_DATA_TABLE_ENTRY e = CONTAINING_RECORD(link, KLDR_DATA_TABLE_ENTRY, InLoadOrderLinks);
        ULONG64 base = (ULONG64)e->DllBase, rva = ControlPc - base;
        PRUNTIME_FUNCTION table = e->ExceptionTable;
        LONG low = 0, high;
        if (ControlPc < base || rva >= e->SizeOfImage)
            continue;
        *ImageBase = base;
        if (!table)
            return NULL;
        high = (LONG)(e->ExceptionTableSize / sizeof(RUNTIME_FUNCTION)) - 1;
        while (low <= high) {
            LONG mid = (low + high) / 2;
            if (rva < table[mid].BeginAddress) {
                high = mid - 1;
            } else if (rva >= table[mid].EndAddress) {
                low = mid + 1;
            } else {
                PRUNTIME_FUNCTION f = &table[mid];
                /* An indirect entry names the entry that describes the code. */
                if (f->UnwindData & 1)
                    f = (PRUNTIME_FUNCTION)(base + (f->UnwindData & ~1UL));
                return f;
            }
        }
        return NULL;
    }
    return NULL;
}

static PULONG64 RtlpRegister(PCONTEXT Context, ULONG Number)
{
    return &Context->Rax + Number;   /* Rax..R15 are in the x64 register-number order */
}

/* The epilog rule: at an epilog (add rsp / lea rsp, pops, ret), the frame is undone by
 * running what is left of it; the unwind codes describe the prolog only. */
static BOOLEAN RtlpUnwindEpilog(ULONG64 ControlPc, PUNWIND_INFO Info, PCONTEXT Context)
{
    PUCHAR pc = (PUCHAR)ControlPc;
    ULONG64 rsp = Context->Rsp;
    ULONG frameReg = Info->FrameRegisterAndOffset & 0xF;

    if ((pc[0] & 0xF8) == 0x48 && pc[1] == 0x83 && pc[2] == 0xC4) {         /* add rsp, imm8 */
        rsp += (LONG)(signed char)pc[3];
        pc += 4;
    } else if ((pc[0] & 0xF8) == 0x48 && pc[1] == 0x81 && pc[2] == 0xC4) {  /* add rsp, imm32 */
        rsp += *(LONG *)(pc + 3);
        pc += 7;
    } else if ((pc[0] & 0xF8) == 0x48 && pc[1] == 0x8D) {                   /* lea rsp, [frame+disp] */
        UCHAR modrm = pc[2];
        ULONG reg = (modrm & 7) + ((pc[0] & 1) << 3);
        if (((modrm >> 3) & 7) != 4 || (pc[0] & 4) || reg != frameReg)
            return FALSE;
        if ((modrm >> 6) == 1) {
            rsp = *RtlpRegister(Context, reg) + (signed char)pc[3];
            pc += 4;
        } else if ((modrm >> 6) == 2) {
            rsp = *RtlpRegister(Context, reg) + *(LONG *)(pc + 3);
            pc += 7;
        } else {
            return FALSE;
        }
    }
    /* Now only pops may follow, then ret (or a tail jump). */
    {
        PUCHAR scan = pc;
        for (;;) {
            if ((scan[0] & 0xF8) == 0x58) scan += 1;
            else if (scan[0] == 0x41 && (scan[1] & 0xF8) == 0x58) scan += 2;
            else break;
        }
        if (scan[0] != 0xC3 && !(scan[0] == 0xF3 && scan[1] == 0xC3) && scan[0] != 0xE9
            && !(scan[0] == 0x48 && scan[1] == 0xFF))
            return FALSE;
        if (scan[0] == 0xE9 || scan[0] == 0x48) {
            /* A jump ends an epilog only if the pops before it are there too. */
            if (scan == pc && pc == (PUCHAR)ControlPc)
                return FALSE;
        }
    }
    while (((pc[0] & 0xF8) == 0x58) || (pc[0] == 0x41 && (pc[1] & 0xF8) == 0x58)) {
        ULONG reg = pc[0] == 0x41 ? (pc[1] & 7) + 8 : (pc[0] & 7);
        *RtlpRegister(Context, reg) = *(PULONG64)rsp;
        rsp += 8;
        pc += pc[0] == 0x41 ? 2 : 1;
    }
    Context->Rip = *(PULONG64)rsp;
    Context->Rsp = rsp + 8;
    return TRUE;
}

static ULONG RtlpSlots(USHORT Code)
{
    ULONG op = (Code >> 8) & 0xF, info = Code >> 12;
    switch (op) {
    case UWOP_ALLOC_LARGE: return info ? 3 : 2;
    case UWOP_SAVE_NONVOL: case UWOP_SAVE_XMM128: case UWOP_EPILOG: return 2;
    case UWOP_SAVE_NONVOL_FAR: case UWOP_SAVE_XMM128_FAR: case UWOP_SPARE_CODE: return 3;
    default: return 1;
    }
}

PEXCEPTION_ROUTINE NTAPI RtlVirtualUnwind(ULONG HandlerType, ULONG64 ImageBase, ULONG64 ControlPc,
    PRUNTIME_FUNCTION FunctionEntry, PCONTEXT Context, PVOID *HandlerData, PULONG64 EstablisherFrame,
    PVOID ContextPointers)
{
    PUNWIND_INFO info = (PUNWIND_INFO)(ImageBase + FunctionEntry->UnwindData);
    ULONG offset = (ULONG)(ControlPc - ImageBase - FunctionEntry->BeginAddress);
    ULONG frameReg = info->FrameRegisterAndOffset & 0xF;
    ULONG frameOff = (info->FrameRegisterAndOffset >> 4) * 16;
    BOOLEAN inProlog = offset < info->SizeOfProlog;
    BOOLEAN machineFrame = FALSE;
    ULONG i;
    (void)ContextPointers;

    *HandlerData = NULL;
    /* The establisher frame is RSP after the prolog: the frame register says where,
     * once the prolog has set it. */
    *EstablisherFrame = Context->Rsp;
    if (frameReg) {
        BOOLEAN set = !inProlog;
        for (i = 0; i < info->CountOfCodes && !set; i += RtlpSlots(info->UnwindCode[i]))
            if (((info->UnwindCode[i] >> 8) & 0xF) == UWOP_SET_FPREG && (info->UnwindCode[i] & 0xFF) <= offset)
                set = TRUE;
        if (set)
            *EstablisherFrame = *RtlpRegister(Context, frameReg) - frameOff;
    }
    if (!inProlog && RtlpUnwindEpilog(ControlPc, info, Context))
        return NULL;

    for (;;) {
        for (i = 0; i < info->CountOfCodes; i += RtlpSlots(info->UnwindCode[i])) {
            USHORT code = info->UnwindCode[i];
            ULONG op = (code >> 8) & 0xF, opInfo = code >> 12;
            if (inProlog && (code & 0xFF) > offset)
                continue;                  /* that prolog instruction has not run yet */
            switch (op) {
            case UWOP_PUSH_NONVOL:
                *RtlpRegister(Context, opInfo) = *(PULONG64)Context->Rsp;
                Context->Rsp += 8;
                break;
            case UWOP_ALLOC_LARGE:
                Context->Rsp += opInfo ? *(ULONG *)&info->UnwindCode[i + 1]
                                       : (ULONG)info->UnwindCode[i + 1] * 8;
                break;
            case UWOP_ALLOC_SMALL:
                Context->Rsp += opInfo * 8 + 8;
                break;
            case UWOP_SET_FPREG:
                Context->Rsp = *RtlpRegister(Context, frameReg) - frameOff;
                break;
            case UWOP_SAVE_NONVOL:
                *RtlpRegister(Context, opInfo) = *(PULONG64)(*EstablisherFrame + info->UnwindCode[i + 1] * 8ULL);
                break;
            case UWOP_SAVE_NONVOL_FAR:
                *RtlpRegister(Context, opInfo) = *(PULONG64)(*EstablisherFrame + *(ULONG *)&info->UnwindCode[i + 1]);
                break;
            case UWOP_SAVE_XMM128:
                memcpy(&Context->Xmm[opInfo], (PVOID)(*EstablisherFrame + info->UnwindCode[i + 1] * 16ULL), 16);
                break;
            case UWOP_SAVE_XMM128_FAR:
                memcpy(&Context->Xmm[opInfo], (PVOID)(*EstablisherFrame + *(ULONG *)&info->UnwindCode[i + 1]), 16);
                break;
            case UWOP_PUSH_MACHFRAME: {
                ULONG64 frame = Context->Rsp + (opInfo ? 8 : 0);
                Context->Rip = ((PULONG64)frame)[0];
                Context->Rsp = ((PULONG64)frame)[3];
                machineFrame = TRUE;
                break;
            }
            default:
                break;
            }
        }
        if (!((info->VersionAndFlags >> 3) & UNW_FLAG_CHAININFO))
            break;
        {
            /* Chained info: the primary entry's codes apply too (the whole prolog). */
            PRUNTIME_FUNCTION chained = (PRUNTIME_FUNCTION)&info->UnwindCode[(info->CountOfCodes + 1) & ~1];
            info = (PUNWIND_INFO)(ImageBase + chained->UnwindData);
            inProlog = FALSE;
            frameReg = info->FrameRegisterAndOffset & 0xF;
            frameOff = (info->FrameRegisterAndOffset >> 4) * 16;
        }
    }
    if (!machineFrame) {
        Context->Rip = *(PULONG64)Context->Rsp;
        Context->Rsp += 8;
    }
    info = (PUNWIND_INFO)(ImageBase + FunctionEntry->UnwindData);
    if (offset >= info->SizeOfProlog && ((info->VersionAndFlags >> 3) & HandlerType)) {
        PULONG handler = (PULONG)&info->UnwindCode[(info->CountOfCodes + 1) & ~1];
        *HandlerData = handler + 1;
        return (PEXCEPTION_ROUTINE)(ImageBase + *handler);
    }
    return NULL;
}

/* ---- Dispatching ---- */

static VOID RtlpStackLimits(PULONG64 Low, PULONG64 High)
{
    PUCHAR thread = (PUCHAR)KiPcr.Prcb.CurrentThread;
    *Low = thread ? *(PULONG64)(thread + ET_STACK_LIMIT) : 0;
    *High = thread ? *(PULONG64)(thread + ET_INITIAL_STACK) : ~0ULL;
    if (!*Low || !*High) {
        *Low = 0;
        *High = ~0ULL;
    }
}

/* One frame up from Context: the caller's context; NULL handler for a leaf. */
static PEXCEPTION_ROUTINE RtlpUnwindFrame(ULONG HandlerType, PCONTEXT Context, PDISPATCHER_CONTEXT Dc)
{
    ULONG64 imageBase;
    PRUNTIME_FUNCTION entry;

    Dc->ControlPc = Context->Rip;
    entry = RtlLookupFunctionEntry(Context->Rip, &imageBase, NULL);
    Dc->ImageBase = imageBase;
    Dc->FunctionEntry = entry;
    Dc->HandlerData = NULL;
    if (!entry) {
        /* A leaf function (or code no image describes): the return address is at RSP. */
        Dc->EstablisherFrame = Context->Rsp;
        Context->Rip = *(PULONG64)Context->Rsp;
        Context->Rsp += 8;
        return NULL;
    }
    return RtlVirtualUnwind(HandlerType, imageBase, Dc->ControlPc, entry, Context, &Dc->HandlerData,
                            &Dc->EstablisherFrame, NULL);
}

BOOLEAN NTAPI RtlDispatchException(PEXCEPTION_RECORD ExceptionRecord, PCONTEXT ContextRecord)
{
    CONTEXT walk;
    DISPATCHER_CONTEXT dc;
    ULONG64 low, high;
    ULONG frames;

    RtlpStackLimits(&low, &high);
    memcpy(&walk, ContextRecord, sizeof(walk));
    for (frames = 0; frames < MAX_FRAMES; frames++) {
        CONTEXT frame;
        PEXCEPTION_ROUTINE handler;
        EXCEPTION_DISPOSITION disposition;

        if (walk.Rsp < low || walk.Rsp >= high || (walk.Rsp & 7))
            return FALSE;
        memcpy(&frame, &walk, sizeof(frame));
        handler = RtlpUnwindFrame(UNW_FLAG_EHANDLER, &walk, &dc);
        if (handler) {
            if (dc.EstablisherFrame < low || dc.EstablisherFrame >= high || (dc.EstablisherFrame & 7))
                return FALSE;
            dc.TargetIp = 0;
            dc.ContextRecord = ContextRecord;
            dc.LanguageHandler = handler;
            dc.HistoryTable = NULL;
            dc.ScopeIndex = 0;
            disposition = handler(ExceptionRecord, (PVOID)dc.EstablisherFrame, ContextRecord, &dc);
            if (disposition == ExceptionContinueExecution) {
                if (ExceptionRecord->ExceptionFlags & EXCEPTION_NONCONTINUABLE) {
                    EXCEPTION_RECORD nested;
                    memset(&nested, 0, sizeof(nested));
                    nested.ExceptionCode = STATUS_NONCONTINUABLE_EXCEPTION;
                    nested.ExceptionFlags = EXCEPTION_NONCONTINUABLE;
                    nested.ExceptionRecord = ExceptionRecord;
                    RtlRaiseException(&nested);
                }
                return TRUE;
            }
            if (disposition != ExceptionContinueSearch && disposition != ExceptionNestedException)
                return FALSE;
        }
        if (walk.Rip == 0 || (walk.Rip == frame.Rip && walk.Rsp == frame.Rsp))
            return FALSE;
    }
    return FALSE;
}

VOID NTAPI RtlUnwindEx(PVOID TargetFrame, PVOID TargetIp, PEXCEPTION_RECORD ExceptionRecord, PVOID ReturnValue,
                       PCONTEXT ContextRecord, PVOID HistoryTable)
{
    EXCEPTION_RECORD local;
    CONTEXT walk, frame;
    DISPATCHER_CONTEXT dc;
    ULONG64 low, high;
    ULONG frames;

    RtlpStackLimits(&low, &high);
    if (!ExceptionRecord) {
        memset(&local, 0, sizeof(local));
        local.ExceptionCode = STATUS_UNWIND;
        local.ExceptionAddress = TargetIp;
        ExceptionRecord = &local;
    }
    ExceptionRecord->ExceptionFlags |= EXCEPTION_UNWINDING;
    if (!TargetFrame)
        ExceptionRecord->ExceptionFlags |= EXCEPTION_EXIT_UNWIND;
    /* The frames between here and the context the exception was raised in are the
     * dispatcher's own and have no termination handlers: the walk starts there. */
    if (ContextRecord) {
        memcpy(&walk, ContextRecord, sizeof(walk));
    } else {
        RtlCaptureContext(&walk);
        RtlpUnwindFrame(UNW_FLAG_NHANDLER, &walk, &dc);
    }
    for (frames = 0; frames < MAX_FRAMES; frames++) {
        PEXCEPTION_ROUTINE handler;
        memcpy(&frame, &walk, sizeof(frame));
        handler = RtlpUnwindFrame(UNW_FLAG_UHANDLER, &walk, &dc);
        if (dc.EstablisherFrame == (ULONG64)TargetFrame)
            ExceptionRecord->ExceptionFlags |= EXCEPTION_TARGET_UNWIND;
        if (handler) {
            dc.TargetIp = (ULONG64)TargetIp;
            dc.ContextRecord = &frame;
            dc.LanguageHandler = handler;
            dc.HistoryTable = HistoryTable;
            dc.ScopeIndex = 0;
            handler(ExceptionRecord, (PVOID)dc.EstablisherFrame, &frame, &dc);
        }
        if (dc.EstablisherFrame == (ULONG64)TargetFrame) {
            frame.Rip = (ULONG64)TargetIp;
            frame.Rax = (ULONG64)ReturnValue;
            RtlRestoreContext(&frame, ExceptionRecord);
        }
        /* Every frame further up lies above the caller's RSP: a target below it was missed. */
        if (walk.Rsp < low || walk.Rsp >= high || walk.Rip == 0 || (ULONG64)TargetFrame < walk.Rsp)
            break;
    }
    KeBugCheckEx(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)STATUS_INVALID_DISPOSITION, (ULONG_PTR)TargetIp,
                 (ULONG_PTR)TargetFrame, 0);
}

VOID NTAPI RtlUnwind(PVOID TargetFrame, PVOID TargetIp, PEXCEPTION_RECORD ExceptionRecord, PVOID ReturnValue)
{
    RtlUnwindEx(TargetFrame, TargetIp, ExceptionRecord, ReturnValue, NULL, NULL);
}

/* ---- The C compiler's language handler ---- */

EXCEPTION_DISPOSITION __cdecl __C_specific_handler(PEXCEPTION_RECORD ExceptionRecord, PVOID EstablisherFrame,
                                                   PCONTEXT ContextRecord, PDISPATCHER_CONTEXT Dc)
{
    PSCOPE_TABLE scopes = Dc->HandlerData;
    ULONG64 base = Dc->ImageBase;
    ULONG pc = (ULONG)(Dc->ControlPc - base), i;

    if (!(ExceptionRecord->ExceptionFlags & EXCEPTION_UNWIND)) {
        EXCEPTION_POINTERS pointers;
        pointers.ExceptionRecord = ExceptionRecord;
        pointers.ContextRecord = ContextRecord;
        for (i = Dc->ScopeIndex; i < scopes->Count; i++) {
            LONG filter;
            if (pc < scopes->ScopeRecord[i].BeginAddress || pc >= scopes->ScopeRecord[i].EndAddress
                || scopes->ScopeRecord[i].JumpTarget == 0)
                continue;
            if (scopes->ScopeRecord[i].HandlerAddress == EXCEPTION_EXECUTE_HANDLER)
                filter = EXCEPTION_EXECUTE_HANDLER;
            else
                filter = ((PEXCEPTION_FILTER)(base + scopes->ScopeRecord[i].HandlerAddress))(&pointers,
                                                                                            EstablisherFrame);
            if (filter < 0)
                return ExceptionContinueExecution;
            if (filter > 0)
                RtlUnwindEx(EstablisherFrame, (PVOID)(base + scopes->ScopeRecord[i].JumpTarget), ExceptionRecord,
                            (PVOID)(ULONG_PTR)(ULONG)ExceptionRecord->ExceptionCode, Dc->ContextRecord,
                            Dc->HistoryTable);
        }
        return ExceptionContinueSearch;
    }
    {
        ULONG target = (ULONG)(Dc->TargetIp - base);
        for (i = Dc->ScopeIndex; i < scopes->Count; i++) {
            if (pc < scopes->ScopeRecord[i].BeginAddress || pc >= scopes->ScopeRecord[i].EndAddress)
                continue;
            if (ExceptionRecord->ExceptionFlags & EXCEPTION_TARGET_UNWIND) {
                /* Scopes that also enclose the target stay: unwinding stops at their
                 * handler, which is where execution resumes. */
                if (target >= scopes->ScopeRecord[i].BeginAddress && target < scopes->ScopeRecord[i].EndAddress)
                    break;
                if (scopes->ScopeRecord[i].JumpTarget == target)
                    break;
            }
            if (scopes->ScopeRecord[i].JumpTarget == 0) {
                Dc->ScopeIndex = i + 1;
                ((PTERMINATION_HANDLER)(base + scopes->ScopeRecord[i].HandlerAddress))(TRUE, EstablisherFrame);
            }
        }
        return ExceptionContinueSearch;
    }
}

/* ---- Raising ---- */

/* A raised exception goes to the debugger first, as KiDispatchException reports it
 * (first chance) before any handler runs, with the context of the raise site: the
 * machine turns this debug service into an Exception state change whose registers are
 * that CONTEXT, and copies the debugger's changes back into it when it runs on. */
#define KSIM_SERVICE_EXCEPTION 0x4B01

static VOID KiReportException(PEXCEPTION_RECORD ExceptionRecord, PCONTEXT Context)
{
    if (KdDebuggerEnabled)
        DebugService(KSIM_SERVICE_EXCEPTION, ExceptionRecord, (ULONG_PTR)Context, NULL, 0);
}

VOID NTAPI RtlRaiseException(PEXCEPTION_RECORD ExceptionRecord)
{
    CONTEXT context;
    DISPATCHER_CONTEXT dc;

    RtlCaptureContext(&context);
    /* The exception happened where RtlRaiseException was called from. */
    RtlpUnwindFrame(UNW_FLAG_NHANDLER, &context, &dc);
    ExceptionRecord->ExceptionAddress = (PVOID)context.Rip;
    KiReportException(ExceptionRecord, &context);
    if (RtlDispatchException(ExceptionRecord, &context))
        RtlRestoreContext(&context, ExceptionRecord);
    KeBugCheckEx(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)ExceptionRecord->ExceptionCode,
                 (ULONG_PTR)ExceptionRecord->ExceptionAddress, ExceptionRecord->ExceptionInformation[0],
                 ExceptionRecord->ExceptionInformation[1]);
}

static DECLSPEC_NORETURN VOID ExpRaise(NTSTATUS Status, ULONG Count, ULONG64 P0, ULONG64 P1)
{
    EXCEPTION_RECORD record;
    memset(&record, 0, sizeof(record));
    record.ExceptionCode = Status;
    record.ExceptionFlags = EXCEPTION_NONCONTINUABLE;
    record.NumberParameters = Count;
    record.ExceptionInformation[0] = P0;
    record.ExceptionInformation[1] = P1;
    RtlRaiseException(&record);
    KeBugCheckEx(KMODE_EXCEPTION_NOT_HANDLED, (ULONG)Status, 0, 0, 0);
}

DECLSPEC_NORETURN VOID NTAPI ExRaiseStatus(NTSTATUS Status) { ExpRaise(Status, 0, 0, 0); }
DECLSPEC_NORETURN VOID NTAPI ExRaiseAccessViolation(VOID) { ExpRaise(STATUS_ACCESS_VIOLATION, 0, 0, 0); }
DECLSPEC_NORETURN VOID NTAPI ExRaiseDatatypeMisalignment(VOID) { ExpRaise(STATUS_DATATYPE_MISALIGNMENT, 0, 0, 0); }

/* ProbeForRead: a zero length is always fine; otherwise the start must be aligned
 * (STATUS_DATATYPE_MISALIGNMENT) and the whole range must lie in user space
 * (STATUS_ACCESS_VIOLATION, its first parameter 0 read / 1 write).  ProbeForWrite also
 * touches each page for writing.  FALSE: nothing to probe. */
static BOOLEAN ExpProbe(ULONG64 Start, SIZE_T Length, ULONG Alignment, ULONG Write)
{
    ULONG64 end = Start + Length;
    if (Length == 0)
        return FALSE;
    if (Start & (Alignment - 1))
        ExRaiseDatatypeMisalignment();
    if (end < Start || end > MmUserProbeAddress)
        ExpRaise(STATUS_ACCESS_VIOLATION, 2, Write, end > MmUserProbeAddress ? MmUserProbeAddress : Start);
    return TRUE;
}

VOID NTAPI ProbeForRead(const volatile void *Address, SIZE_T Length, ULONG Alignment)
{
    ExpProbe((ULONG64)Address, Length, Alignment, 0);
}

VOID NTAPI ProbeForWrite(volatile void *Address, SIZE_T Length, ULONG Alignment)
{
    ULONG64 start = (ULONG64)Address, page;
    if (!ExpProbe(start, Length, Alignment, 1))
        return;
    for (page = start & ~(PAGE_SIZE - 1); page < start + Length; page += PAGE_SIZE) {
        volatile UCHAR *p = (volatile UCHAR *)(page < start ? start : page);
        *p = *p;
    }
}

/* ---- CPU faults ---- */

VOID KiDispatchFault(NTSTATUS Code, ULONG Count, ULONG64 P0, ULONG64 P1, PCONTEXT Context)
{
    EXCEPTION_RECORD record;
    if (!Context)
        return;
    memset(&record, 0, sizeof(record));
    record.ExceptionCode = Code;
    record.ExceptionAddress = (PVOID)Context->Rip;
    record.NumberParameters = Count;
    record.ExceptionInformation[0] = P0;
    record.ExceptionInformation[1] = P1;
    if (RtlDispatchException(&record, Context))
        RtlRestoreContext(Context, &record);
}

/* ---- Context capture and restore ---- */

__asm__(".text\n"
        ".globl RtlCaptureContext\n"
        "RtlCaptureContext:\n"
        "    pushfq\n"
        "    popq 0x44(%rcx)\n"
        "    movl $0x10000b, 0x30(%rcx)\n"
        "    movq %rax, 0x78(%rcx)\n    movq %rcx, 0x80(%rcx)\n    movq %rdx, 0x88(%rcx)\n"
        "    movq %rbx, 0x90(%rcx)\n    movq %rbp, 0xa0(%rcx)\n    movq %rsi, 0xa8(%rcx)\n"
        "    movq %rdi, 0xb0(%rcx)\n    movq %r8, 0xb8(%rcx)\n    movq %r9, 0xc0(%rcx)\n"
        "    movq %r10, 0xc8(%rcx)\n    movq %r11, 0xd0(%rcx)\n    movq %r12, 0xd8(%rcx)\n"
        "    movq %r13, 0xe0(%rcx)\n    movq %r14, 0xe8(%rcx)\n    movq %r15, 0xf0(%rcx)\n"
        "    movw %cs, 0x38(%rcx)\n    movw %ds, 0x3a(%rcx)\n    movw %es, 0x3c(%rcx)\n"
        "    movw %fs, 0x3e(%rcx)\n    movw %gs, 0x40(%rcx)\n    movw %ss, 0x42(%rcx)\n"
        "    stmxcsr 0x34(%rcx)\n"
        "    movdqa %xmm0, 0x1a0(%rcx)\n  movdqa %xmm1, 0x1b0(%rcx)\n  movdqa %xmm2, 0x1c0(%rcx)\n"
        "    movdqa %xmm3, 0x1d0(%rcx)\n  movdqa %xmm4, 0x1e0(%rcx)\n  movdqa %xmm5, 0x1f0(%rcx)\n"
        "    movdqa %xmm6, 0x200(%rcx)\n  movdqa %xmm7, 0x210(%rcx)\n  movdqa %xmm8, 0x220(%rcx)\n"
        "    movdqa %xmm9, 0x230(%rcx)\n  movdqa %xmm10, 0x240(%rcx)\n movdqa %xmm11, 0x250(%rcx)\n"
        "    movdqa %xmm12, 0x260(%rcx)\n movdqa %xmm13, 0x270(%rcx)\n movdqa %xmm14, 0x280(%rcx)\n"
        "    movdqa %xmm15, 0x290(%rcx)\n"
        "    leaq 8(%rsp), %rax\n"
        "    movq %rax, 0x98(%rcx)\n"
        "    movq (%rsp), %rax\n"
        "    movq %rax, 0xf8(%rcx)\n"
        "    movq 0x78(%rcx), %rax\n"
        "    ret\n"
        /* RtlRestoreContext(Context, ExceptionRecord): the flags and the return address
         * go just below the target RSP (free stack of the frame being resumed), then
         * popfq; ret lands there with every register loaded. */
        ".globl RtlRestoreContext\n"
        "RtlRestoreContext:\n"
        "    movdqa 0x1a0(%rcx), %xmm0\n  movdqa 0x1b0(%rcx), %xmm1\n  movdqa 0x1c0(%rcx), %xmm2\n"
        "    movdqa 0x1d0(%rcx), %xmm3\n  movdqa 0x1e0(%rcx), %xmm4\n  movdqa 0x1f0(%rcx), %xmm5\n"
        "    movdqa 0x200(%rcx), %xmm6\n  movdqa 0x210(%rcx), %xmm7\n  movdqa 0x220(%rcx), %xmm8\n"
        "    movdqa 0x230(%rcx), %xmm9\n  movdqa 0x240(%rcx), %xmm10\n movdqa 0x250(%rcx), %xmm11\n"
        "    movdqa 0x260(%rcx), %xmm12\n movdqa 0x270(%rcx), %xmm13\n movdqa 0x280(%rcx), %xmm14\n"
        "    movdqa 0x290(%rcx), %xmm15\n"
        "    movq 0x98(%rcx), %r11\n"
        "    subq $16, %r11\n"
        "    movq 0xf8(%rcx), %rax\n"
        "    movq %rax, 8(%r11)\n"
        "    movl 0x44(%rcx), %eax\n"
        "    andl $0xfffffeff, %eax\n"
        "    movq %rax, (%r11)\n"
        "    movq 0x78(%rcx), %rax\n    movq 0x88(%rcx), %rdx\n    movq 0x90(%rcx), %rbx\n"
        "    movq 0xa0(%rcx), %rbp\n    movq 0xa8(%rcx), %rsi\n    movq 0xb0(%rcx), %rdi\n"
        "    movq 0xb8(%rcx), %r8\n     movq 0xc0(%rcx), %r9\n     movq 0xc8(%rcx), %r10\n"
        "    movq 0xd8(%rcx), %r12\n    movq 0xe0(%rcx), %r13\n    movq 0xe8(%rcx), %r14\n"
        "    movq 0xf0(%rcx), %r15\n"
        "    movq %r11, %rsp\n"
        "    movq 0xd0(%rcx), %r11\n"
        "    movq 0x80(%rcx), %rcx\n"
        "    popfq\n"
        "    ret\n");
