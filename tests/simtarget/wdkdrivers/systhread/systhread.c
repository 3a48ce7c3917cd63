/*
 * systhread.sys - system threads used as the WDK documents them: PsCreateSystemThread
 * with a start context and a CLIENT_ID, threads that delay and so let each other run,
 * a thread blocked on an event until DriverEntry sets it, one that ends with
 * PsTerminateSystemThread and its status, DriverEntry waiting on the thread objects
 * (ObReferenceObjectByHandle, KeWaitForMultipleObjects) before closing the handles.
 * Each fact is printed on one "thread:" line.
 */
#include <ntddk.h>

#define MS(n) ((LONGLONG)(n) * -10000)

static KEVENT Go;
static HANDLE MainId;
static LONG Order[8];
static LONG OrderCount;

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD ThreadUnload;
KSTART_ROUTINE Stepper, Waiter, Quitter;

VOID Stepper(PVOID Context)
{
    LONG name = (LONG)(ULONG_PTR)Context;
    LARGE_INTEGER interval;
    int i;

    DbgPrint("thread: %c starts irql=%u own_id=%u\n", (char)name, (unsigned)KeGetCurrentIrql(),
             PsGetCurrentThreadId() != MainId);
    for (i = 0; i < 3; i++) {
        Order[OrderCount++] = name;
        interval.QuadPart = MS(1);
        KeDelayExecutionThread(KernelMode, FALSE, &interval);
    }
}

VOID Waiter(PVOID Context)
{
    NTSTATUS status;
    UNREFERENCED_PARAMETER(Context);
    status = KeWaitForSingleObject(&Go, Executive, KernelMode, FALSE, NULL);
    DbgPrint("thread: waiter woke %08lx after %ld steps\n", status, OrderCount);
}

VOID Quitter(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    PsTerminateSystemThread(STATUS_PENDING);
    DbgPrint("thread: quitter still running\n");
}

static NTSTATUS Start(PKSTART_ROUTINE Routine, PVOID Context, PVOID *Object, PCLIENT_ID Cid)
{
    HANDLE handle;
    NTSTATUS status = PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, NULL, NULL, Cid, Routine, Context);
    if (!NT_SUCCESS(status))
        return status;
    status = ObReferenceObjectByHandle(handle, SYNCHRONIZE, NULL, KernelMode, Object, NULL);
    ZwClose(handle);
    return status;
}

VOID ThreadUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    DbgPrint("thread: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    PVOID threads[4];
    CLIENT_ID cid;
    LARGE_INTEGER timeout;
    NTSTATUS created, all, quitter, waiter_early, self;
    char order[8];
    int i;

    UNREFERENCED_PARAMETER(RegistryPath);
    DriverObject->DriverUnload = ThreadUnload;
    MainId = PsGetCurrentThreadId();
    KeInitializeEvent(&Go, NotificationEvent, FALSE);

    created = Start(Stepper, (PVOID)'A', &threads[0], &cid);
    DbgPrint("thread: created %08lx process=%u thread_id_differs=%u\n", created,
             (unsigned)(ULONG_PTR)cid.UniqueProcess, cid.UniqueThread != MainId);
    Start(Stepper, (PVOID)'B', &threads[1], NULL);
    Start(Waiter, NULL, &threads[2], NULL);
    Start(Quitter, NULL, &threads[3], NULL);

    all = KeWaitForMultipleObjects(2, threads, WaitAll, Executive, KernelMode, FALSE, NULL, NULL);
    for (i = 0; i < OrderCount && i < 7; i++)
        order[i] = (char)Order[i];
    order[i] = 0;
    DbgPrint("thread: steppers done %08lx order=%s\n", all, order);

    timeout.QuadPart = MS(2);
    waiter_early = KeWaitForSingleObject(threads[2], Executive, KernelMode, FALSE, &timeout);
    KeSetEvent(&Go, IO_NO_INCREMENT, FALSE);
    all = KeWaitForSingleObject(threads[2], Executive, KernelMode, FALSE, NULL);
    quitter = KeWaitForSingleObject(threads[3], Executive, KernelMode, FALSE, NULL);
    self = PsTerminateSystemThread(STATUS_SUCCESS);
    DbgPrint("thread: waiter early=%08lx done=%08lx quitter=%08lx self_terminate=%08lx\n", waiter_early, all,
             quitter, self);
    for (i = 0; i < 4; i++)
        ObDereferenceObject(threads[i]);
    return STATUS_SUCCESS;
}
