/*
 * csq.c - the cancel spin lock, IoCancelIrp, and cancel-safe IRP queues (IoCsq*).
 *
 * The cancel spin lock is one global spin lock: IoAcquireCancelSpinLock raises to
 * DISPATCH_LEVEL and IoReleaseCancelSpinLock lowers to the IRQL it returned.  A cancel
 * routine is what IoSetCancelRoutine (a macro in wdm.h, an exchange of
 * Irp->CancelRoutine) left in the IRP.  IoCancelIrp, as the WDK documents it: takes the
 * cancel spin lock, sets Irp->Cancel, takes the cancel routine out of the IRP and, if
 * there was one, calls it with the lock held and the IRQL to return to in
 * Irp->CancelIrql (the routine releases the lock) and returns TRUE; with no routine it
 * releases the lock and returns FALSE.
 *
 * A cancel-safe queue keeps the driver's own list under the driver's own lock (its
 * IO_CSQ callbacks); this file supplies the cancel logic around it.  The queue an IRP
 * belongs to, or its IO_CSQ_IRP_CONTEXT, is kept in Tail.Overlay.DriverContext[3], as
 * the documentation reserves it; a context starts with Type IO_TYPE_CSQ_IRP_CONTEXT (1)
 * and a queue with IO_TYPE_CSQ (2) or IO_TYPE_CSQ_EX (3), which tells the two apart.
 * An IRP inserted after it was cancelled is taken out again and handed to
 * CsqCompleteCanceledIrp before the insert returns.  One CPU means a cancel routine
 * runs to its end inside IoCancelIrp, but the exchange of the cancel routine is still
 * what decides whether the queue or the canceller owns the IRP, as on Windows.
 */
#include "ksimrt.h"

#define IO_TYPE_CSQ_IRP_CONTEXT 1
#define IO_TYPE_CSQ             2
#define IO_TYPE_CSQ_EX          3
#define SL_PENDING_RETURNED     0x01

typedef VOID (NTAPI *PDRIVER_CANCEL)(PDEVICE_OBJECT DeviceObject, PIRP Irp);

struct _IO_CSQ;
typedef VOID (NTAPI *PIO_CSQ_INSERT_IRP)(struct _IO_CSQ *Csq, PIRP Irp);
typedef NTSTATUS (NTAPI *PIO_CSQ_INSERT_IRP_EX)(struct _IO_CSQ *Csq, PIRP Irp, PVOID InsertContext);
typedef VOID (NTAPI *PIO_CSQ_REMOVE_IRP)(struct _IO_CSQ *Csq, PIRP Irp);
typedef PIRP (NTAPI *PIO_CSQ_PEEK_NEXT_IRP)(struct _IO_CSQ *Csq, PIRP Irp, PVOID PeekContext);
typedef VOID (NTAPI *PIO_CSQ_ACQUIRE_LOCK)(struct _IO_CSQ *Csq, PKIRQL Irql);
typedef VOID (NTAPI *PIO_CSQ_RELEASE_LOCK)(struct _IO_CSQ *Csq, KIRQL Irql);
typedef VOID (NTAPI *PIO_CSQ_COMPLETE_CANCELED_IRP)(struct _IO_CSQ *Csq, PIRP Irp);

typedef struct _IO_CSQ {
    ULONG Type;
    PVOID CsqInsertIrp;               /* PIO_CSQ_INSERT_IRP, or _EX when Type is IO_TYPE_CSQ_EX */
    PIO_CSQ_REMOVE_IRP CsqRemoveIrp;
    PIO_CSQ_PEEK_NEXT_IRP CsqPeekNextIrp;
    PIO_CSQ_ACQUIRE_LOCK CsqAcquireLock;
    PIO_CSQ_RELEASE_LOCK CsqReleaseLock;
    PIO_CSQ_COMPLETE_CANCELED_IRP CsqCompleteCanceledIrp;
    PVOID ReservePointer;
} IO_CSQ, *PIO_CSQ;

typedef struct _IO_CSQ_IRP_CONTEXT {
    ULONG Type;
    PIRP Irp;
    PIO_CSQ Csq;
} IO_CSQ_IRP_CONTEXT, *PIO_CSQ_IRP_CONTEXT;

VOID NTAPI KeAcquireSpinLock(PKSPIN_LOCK Lock, PKIRQL OldIrql);
VOID NTAPI KeReleaseSpinLock(PKSPIN_LOCK Lock, KIRQL NewIrql);

static KSPIN_LOCK IopCancelSpinLock;

/* Tail.Overlay.DriverContext[3]: 0x18 bytes into the IRP's tail overlay. */
static PVOID *IopCsqSlot(PIRP Irp) { return (PVOID *)(Irp->TailPad + 0x18); }

static PDRIVER_CANCEL IopSetCancelRoutine(PIRP Irp, PDRIVER_CANCEL Routine)
{
    return (PDRIVER_CANCEL)__atomic_exchange_n(&Irp->CancelRoutine, (PVOID)Routine, __ATOMIC_SEQ_CST);
}

/* ---- Cancel spin lock and IoCancelIrp ---- */

VOID NTAPI IoAcquireCancelSpinLock(PKIRQL Irql) { KeAcquireSpinLock(&IopCancelSpinLock, Irql); }
VOID NTAPI IoReleaseCancelSpinLock(KIRQL Irql) { KeReleaseSpinLock(&IopCancelSpinLock, Irql); }

BOOLEAN NTAPI IoCancelIrp(PIRP Irp)
{
    KIRQL irql;
    PDRIVER_CANCEL routine;
    PDEVICE_OBJECT device = NULL;

    IoAcquireCancelSpinLock(&irql);
    Irp->Cancel = TRUE;
    routine = IopSetCancelRoutine(Irp, NULL);
    if (!routine) {
        IoReleaseCancelSpinLock(irql);
        return FALSE;
    }
    Irp->CancelIrql = irql;
    /* An IRP never sent to a driver has no current stack location to name a device. */
    if (Irp->CurrentLocation <= Irp->StackCount)
        device = Irp->CurrentStackLocation->DeviceObject;
    routine(device, Irp);
    return TRUE;
}

/* ---- Cancel-safe queues ---- */

static PIO_CSQ IopCsqOf(PVOID Slot)
{
    PIO_CSQ_IRP_CONTEXT context = Slot;
    return context->Type == IO_TYPE_CSQ_IRP_CONTEXT ? context->Csq : (PIO_CSQ)Slot;
}

/* Forget the IRP's queue entry once the queue no longer holds it. */
static VOID IopCsqDetach(PIRP Irp)
{
    PIO_CSQ_IRP_CONTEXT context = *IopCsqSlot(Irp);
    if (context && context->Type == IO_TYPE_CSQ_IRP_CONTEXT)
        context->Irp = NULL;
    *IopCsqSlot(Irp) = NULL;
}

static VOID NTAPI IopCsqCancelRoutine(PDEVICE_OBJECT DeviceObject, PIRP Irp)
{
    PIO_CSQ csq;
    KIRQL irql;
    (void)DeviceObject;

    IoReleaseCancelSpinLock(Irp->CancelIrql);
    csq = IopCsqOf(*IopCsqSlot(Irp));
    csq->CsqAcquireLock(csq, &irql);
    csq->CsqRemoveIrp(csq, Irp);
    IopCsqDetach(Irp);
    csq->CsqReleaseLock(csq, irql);
    csq->CsqCompleteCanceledIrp(csq, Irp);
}

static NTSTATUS IopCsqInit(PIO_CSQ Csq, ULONG Type, PVOID InsertIrp, PIO_CSQ_REMOVE_IRP RemoveIrp,
                           PIO_CSQ_PEEK_NEXT_IRP PeekNextIrp, PIO_CSQ_ACQUIRE_LOCK AcquireLock,
                           PIO_CSQ_RELEASE_LOCK ReleaseLock, PIO_CSQ_COMPLETE_CANCELED_IRP CompleteCanceledIrp)
{
    Csq->Type = Type;
    Csq->CsqInsertIrp = InsertIrp;
    Csq->CsqRemoveIrp = RemoveIrp;
    Csq->CsqPeekNextIrp = PeekNextIrp;
    Csq->CsqAcquireLock = AcquireLock;
    Csq->CsqReleaseLock = ReleaseLock;
    Csq->CsqCompleteCanceledIrp = CompleteCanceledIrp;
    Csq->ReservePointer = NULL;
    return STATUS_SUCCESS;
}

NTSTATUS NTAPI IoCsqInitialize(PIO_CSQ Csq, PIO_CSQ_INSERT_IRP InsertIrp, PIO_CSQ_REMOVE_IRP RemoveIrp,
                               PIO_CSQ_PEEK_NEXT_IRP PeekNextIrp, PIO_CSQ_ACQUIRE_LOCK AcquireLock,
                               PIO_CSQ_RELEASE_LOCK ReleaseLock, PIO_CSQ_COMPLETE_CANCELED_IRP CompleteCanceledIrp)
{
    return IopCsqInit(Csq, IO_TYPE_CSQ, (PVOID)InsertIrp, RemoveIrp, PeekNextIrp, AcquireLock,
                      ReleaseLock, CompleteCanceledIrp);
}

NTSTATUS NTAPI IoCsqInitializeEx(PIO_CSQ Csq, PIO_CSQ_INSERT_IRP_EX InsertIrp, PIO_CSQ_REMOVE_IRP RemoveIrp,
                                 PIO_CSQ_PEEK_NEXT_IRP PeekNextIrp, PIO_CSQ_ACQUIRE_LOCK AcquireLock,
                                 PIO_CSQ_RELEASE_LOCK ReleaseLock, PIO_CSQ_COMPLETE_CANCELED_IRP CompleteCanceledIrp)
{
    return IopCsqInit(Csq, IO_TYPE_CSQ_EX, (PVOID)InsertIrp, RemoveIrp, PeekNextIrp, AcquireLock,
                      ReleaseLock, CompleteCanceledIrp);
}

NTSTATUS NTAPI IoCsqInsertIrpEx(PIO_CSQ Csq, PIRP Irp, PIO_CSQ_IRP_CONTEXT Context, PVOID InsertContext)
{
    KIRQL irql;
    NTSTATUS status = STATUS_SUCCESS;

    Csq->CsqAcquireLock(Csq, &irql);
    if (Context) {
        Context->Type = IO_TYPE_CSQ_IRP_CONTEXT;
        Context->Irp = Irp;
        Context->Csq = Csq;
        *IopCsqSlot(Irp) = Context;
    } else {
        *IopCsqSlot(Irp) = Csq;
    }
    if (Csq->Type == IO_TYPE_CSQ_EX)
        status = ((PIO_CSQ_INSERT_IRP_EX)Csq->CsqInsertIrp)(Csq, Irp, InsertContext);
    else
        ((PIO_CSQ_INSERT_IRP)Csq->CsqInsertIrp)(Csq, Irp);
    if (!NT_SUCCESS(status)) {
        IopCsqDetach(Irp);
        Csq->CsqReleaseLock(Csq, irql);
        return status;
    }
    if (Irp->CurrentLocation <= Irp->StackCount)
        Irp->CurrentStackLocation->Control |= SL_PENDING_RETURNED;
    IopSetCancelRoutine(Irp, IopCsqCancelRoutine);
    if (Irp->Cancel && IopSetCancelRoutine(Irp, NULL)) {
        /* Cancelled before it was queued: the queue still owns it, so it goes now. */
        Csq->CsqRemoveIrp(Csq, Irp);
        IopCsqDetach(Irp);
        Csq->CsqReleaseLock(Csq, irql);
        Csq->CsqCompleteCanceledIrp(Csq, Irp);
        return status;
    }
    Csq->CsqReleaseLock(Csq, irql);
    return status;
}

VOID NTAPI IoCsqInsertIrp(PIO_CSQ Csq, PIRP Irp, PIO_CSQ_IRP_CONTEXT Context)
{
    (void)IoCsqInsertIrpEx(Csq, Irp, Context, NULL);
}

PIRP NTAPI IoCsqRemoveNextIrp(PIO_CSQ Csq, PVOID PeekContext)
{
    KIRQL irql;
    PIRP irp;

    Csq->CsqAcquireLock(Csq, &irql);
    irp = Csq->CsqPeekNextIrp(Csq, NULL, PeekContext);
    /* An IRP whose cancel routine is gone belongs to the canceller: skip it. */
    while (irp && !IopSetCancelRoutine(irp, NULL))
        irp = Csq->CsqPeekNextIrp(Csq, irp, PeekContext);
    if (irp) {
        Csq->CsqRemoveIrp(Csq, irp);
        IopCsqDetach(irp);
    }
    Csq->CsqReleaseLock(Csq, irql);
    return irp;
}

PIRP NTAPI IoCsqRemoveIrp(PIO_CSQ Csq, PIO_CSQ_IRP_CONTEXT Context)
{
    KIRQL irql;
    PIRP irp;

    Csq->CsqAcquireLock(Csq, &irql);
    irp = Context->Irp;
    if (irp && IopSetCancelRoutine(irp, NULL)) {
        Csq->CsqRemoveIrp(Csq, irp);
        IopCsqDetach(irp);
    } else {
        irp = NULL;
    }
    Csq->CsqReleaseLock(Csq, irql);
    return irp;
}
