/*
 * obp.h - the object manager's internal interface shared by ob.c (objects, handle
 * tables), file.c (host-backed files), process.c (the simulated user process) and
 * notify.c (notify routines and object callbacks).
 *
 * Every object has a KSIM_OBJECT_HEADER in front of its body.  There are two handle
 * tables: the kernel's (the System process's; handles with bit 31 set, multiples of 4)
 * and the simulated user process's (plain multiples of 4), each entry with the access
 * granted when the handle was made.
 */
#ifndef KSIM_OBP_H
#define KSIM_OBP_H

#include "ksimrt.h"

typedef enum { ObTypeEvent = 1, ObTypeFile, ObTypeKey, ObTypeSection, ObTypeDirectory, ObTypeThread,
               ObTypeProcess, ObTypeDeviceFile, ObTypeMax } OB_TYPE;

/* What the exported POBJECT_TYPE variables point at; drivers compare only identities. */
typedef struct _KSIM_OBJECT_TYPE { ULONG Type; } KSIM_OBJECT_TYPE;

typedef struct _KSIM_OBJECT_HEADER {
    LONG PointerCount;
    LONG HandleCount;
    ULONG Type;
    ULONG Tag;
    UNICODE_STRING Name;
    struct _KSIM_OBJECT_HEADER *NextNamed;
    ULONG64 Pad;
} KSIM_OBJECT_HEADER, *PKSIM_OBJECT_HEADER;

#define OBP_BODY(h) ((PVOID)((PKSIM_OBJECT_HEADER)(h) + 1))
#define OBP_HEADER(o) ((PKSIM_OBJECT_HEADER)(o) - 1)

#ifndef OBJ_KERNEL_HANDLE
#define OBJ_KERNEL_HANDLE 0x00000200L
#endif
#define OBP_KERNEL_HANDLE_BIT 0xFFFFFFFF80000000ULL

#define STATUS_OBJECT_TYPE_MISMATCH   ((NTSTATUS)0xC0000024L)
#define STATUS_ACCESS_DENIED          ((NTSTATUS)0xC0000022L)
#define STATUS_OBJECT_NAME_INVALID    ((NTSTATUS)0xC0000033L)
#define STATUS_OBJECT_PATH_NOT_FOUND  ((NTSTATUS)0xC000003AL)
#define STATUS_PROCEDURE_NOT_FOUND    ((NTSTATUS)0xC000007AL)
#define STATUS_INVALID_CID            ((NTSTATUS)0xC000000BL)
#define STATUS_INFO_LENGTH_MISMATCH   ((NTSTATUS)0xC0000004L)
#define STATUS_INVALID_INFO_CLASS     ((NTSTATUS)0xC0000003L)

#define SYNCHRONIZE          0x00100000UL
#define GENERIC_READ         0x80000000UL
#define GENERIC_WRITE        0x40000000UL
#define GENERIC_EXECUTE      0x20000000UL
#define GENERIC_ALL          0x10000000UL
#define MAXIMUM_ALLOWED      0x02000000UL

typedef struct _CLIENT_ID { HANDLE UniqueProcess, UniqueThread; } CLIENT_ID, *PCLIENT_ID;

NTSTATUS NTAPI ZwClose(HANDLE Handle);
HANDLE NTAPI PsGetCurrentProcessId(VOID);
HANDLE NTAPI PsGetCurrentThreadId(VOID);
HANDLE NTAPI PsGetProcessId(PVOID Process);
HANDLE NTAPI PsGetThreadId(PVOID Thread);
extern KSIM_OBJECT_TYPE *ExEventObjectType, *PsThreadType, *PsProcessType;

NTSTATUS NTAPI ObReferenceObjectByHandle(HANDLE Handle, ACCESS_MASK DesiredAccess, PVOID ObjectType,
    KPROCESSOR_MODE AccessMode, PVOID *Object, PVOID HandleInformation);
VOID NTAPI ObDereferenceObject(PVOID Object);
VOID NTAPI KeClearEvent(PKEVENT Event);
LONG NTAPI KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait);
VOID NTAPI KeInitializeEvent(PKEVENT Event, EVENT_TYPE Type, BOOLEAN State);

/* ob.c */
PKSIM_OBJECT_HEADER ObpCreate(ULONG Type, PUNICODE_STRING Name);
VOID ObpDereference(PKSIM_OBJECT_HEADER Header);
ACCESS_MASK ObpMapGeneric(ULONG Type, ACCESS_MASK Access);
NTSTATUS ObpInsertObjectHandle(PVOID Object, ACCESS_MASK Access, ULONG Attributes, PHANDLE Handle);
NTSTATUS ObpOpen(ULONG Type, POBJECT_ATTRIBUTES Attributes, ACCESS_MASK Access, PHANDLE Handle,
                 PBOOLEAN Created);
PKSIM_OBJECT_HEADER ObpLookupHandle(HANDLE Handle, KPROCESSOR_MODE Mode, ACCESS_MASK *Granted);
VOID ObpCloseUserHandles(VOID);

/* file.c: the host file behind a file object goes with its last reference. */
VOID IopDeleteFile(PVOID File);

/* process.c */
extern PUCHAR PspUserProcess;               /* the simulated user process, or NULL */
BOOLEAN PspInUserProcess(VOID);
PVOID NTAPI PsGetCurrentProcess(VOID);

/* notify.c */
VOID PspNotifyProcess(PUCHAR Process, BOOLEAN Create, PUNICODE_STRING ImageName, NTSTATUS *CreationStatus);
VOID PspNotifyThread(PUCHAR Thread, BOOLEAN Create);
VOID PspNotifyImage(PUNICODE_STRING Name, HANDLE ProcessId, PVOID Base, SIZE_T Size, BOOLEAN System);
ACCESS_MASK ObpPreCreateHandle(PKSIM_OBJECT_HEADER Header, BOOLEAN KernelHandle, ACCESS_MASK Desired,
                               PVOID *Contexts);
VOID ObpPostCreateHandle(PKSIM_OBJECT_HEADER Header, BOOLEAN KernelHandle, ACCESS_MASK Granted,
                         NTSTATUS Status, PVOID *Contexts);
#define OBP_MAX_CALLBACK_OPERATIONS 32

#endif
