/*
 * obtypes.sys - ObReferenceObjectByHandle on events and threads with the exported object
 * types, as the event sample and system-thread drivers use it: a named notification
 * event's handle gives back the event IoCreateNotificationEvent returned, a thread's
 * handle gives a waitable thread object, the wrong type or a bad handle is refused.
 * Each case prints one "ob:" line.
 */
#include <ntddk.h>

DRIVER_INITIALIZE DriverEntry;
DRIVER_UNLOAD ObUnload;
KSTART_ROUTINE Quick;

VOID Quick(PVOID Context)
{
    UNREFERENCED_PARAMETER(Context);
    PsTerminateSystemThread(STATUS_SUCCESS);
}

static VOID Events(VOID)
{
    UNICODE_STRING name = RTL_CONSTANT_STRING(L"\\BaseNamedObjects\\ObTypesEvent");
    HANDLE handle;
    PKEVENT created, event = NULL;
    PVOID wrong = NULL, untyped = NULL;
    NTSTATUS status, mismatch, bad, any;

    created = IoCreateNotificationEvent(&name, &handle);
    KeClearEvent(created);
    status = ObReferenceObjectByHandle(handle, EVENT_MODIFY_STATE, *ExEventObjectType, KernelMode,
                                       (PVOID *)&event, NULL);
    mismatch = ObReferenceObjectByHandle(handle, SYNCHRONIZE, *PsThreadType, KernelMode, &wrong, NULL);
    bad = ObReferenceObjectByHandle((HANDLE)(ULONG_PTR)0xFFFFFFFF80000FF0ull, EVENT_MODIFY_STATE,
                                    *ExEventObjectType, KernelMode, &wrong, NULL);
    any = ObReferenceObjectByHandle(handle, EVENT_MODIFY_STATE, NULL, KernelMode, &untyped, NULL);
    if (NT_SUCCESS(status))
        KeSetEvent(event, IO_NO_INCREMENT, FALSE);
    DbgPrint("ob: event status=%x same=%u signalled=%d mismatch=%x bad=%x untyped=%x,%u wrong_untouched=%u\n",
             status, event == created, KeReadStateEvent(created), mismatch, bad, any, untyped == created,
             wrong == NULL);
    if (NT_SUCCESS(status))
        ObDereferenceObject(event);
    if (NT_SUCCESS(any))
        ObDereferenceObject(untyped);
    ZwClose(handle);
}

static VOID Threads(VOID)
{
    HANDLE handle;
    PVOID thread = NULL, wrong = NULL;
    NTSTATUS created, status, mismatch, waited = STATUS_UNSUCCESSFUL;
    LARGE_INTEGER timeout;

    timeout.QuadPart = -10000LL * 1000;
    created = PsCreateSystemThread(&handle, THREAD_ALL_ACCESS, NULL, NULL, NULL, Quick, NULL);
    status = ObReferenceObjectByHandle(handle, SYNCHRONIZE, *PsThreadType, KernelMode, &thread, NULL);
    mismatch = ObReferenceObjectByHandle(handle, SYNCHRONIZE, *ExEventObjectType, KernelMode, &wrong, NULL);
    if (NT_SUCCESS(status)) {
        waited = KeWaitForSingleObject(thread, Executive, KernelMode, FALSE, &timeout);
        ObDereferenceObject(thread);
    }
    ZwClose(handle);
    DbgPrint("ob: thread created=%x status=%x waited=%x mismatch=%x types=%u\n", created, status, waited,
             mismatch, *PsThreadType != *PsProcessType && *PsProcessType != *ExEventObjectType
                       && *PsProcessType != NULL);
}

VOID ObUnload(PDRIVER_OBJECT DriverObject)
{
    UNREFERENCED_PARAMETER(DriverObject);
    DbgPrint("ob: unload\n");
}

NTSTATUS DriverEntry(PDRIVER_OBJECT DriverObject, PUNICODE_STRING RegistryPath)
{
    UNREFERENCED_PARAMETER(RegistryPath);
    DriverObject->DriverUnload = ObUnload;
    Events();
    Threads();
    return STATUS_SUCCESS;
}
