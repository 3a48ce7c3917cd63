/*
 * iop.h - I/O manager internals shared by io.c, iocomp.c and iostart.c: the device
 * queue (KDEVICE_QUEUE, x64 layout), the DEVICE_OBJECT and IRP fields those files
 * reach by offset, and the stack location control bits of wdm.h.
 */
#ifndef KSIM_IOP_H
#define KSIM_IOP_H

#include "ksimrt.h"

typedef struct _KDEVICE_QUEUE_ENTRY {
    LIST_ENTRY DeviceListEntry;
    ULONG SortKey;
    BOOLEAN Inserted;
} KDEVICE_QUEUE_ENTRY, *PKDEVICE_QUEUE_ENTRY;
STATIC_ASSERT(sizeof(KDEVICE_QUEUE_ENTRY) == 0x18);

typedef struct _KDEVICE_QUEUE {
    CSHORT Type;
    CSHORT Size;
    LIST_ENTRY DeviceListHead;
    KSPIN_LOCK Lock;
    BOOLEAN Busy;
} KDEVICE_QUEUE, *PKDEVICE_QUEUE;
STATIC_ASSERT(sizeof(KDEVICE_QUEUE) == 0x28);
#define DeviceQueueObject 20

typedef VOID (NTAPI *PDRIVER_STARTIO)(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef VOID (NTAPI *PDRIVER_CANCEL)(PDEVICE_OBJECT DeviceObject, PIRP Irp);
typedef NTSTATUS (NTAPI *PIO_COMPLETION_ROUTINE)(PDEVICE_OBJECT DeviceObject, PIRP Irp, PVOID Context);

/* DEVICE_OBJECT fields past StackSize (x64 offsets). The device a device is attached
 * to is kept in Reserved (Windows keeps it in DeviceObjectExtension->AttachedTo). */
#define IopDeviceQueue(d)         ((PKDEVICE_QUEUE)((PUCHAR)(d) + 0xA0))
#define IopAlignmentRequirement(d) (*(PULONG)((PUCHAR)(d) + 0x98))
#define IopSectorSize(d)          (*(PUSHORT)((PUCHAR)(d) + 0x130))
#define IopAttachedTo(d)          (*(PDEVICE_OBJECT *)((PUCHAR)(d) + 0x140))

/* IRP Tail.Overlay fields (x64 offsets). */
#define IopDeviceQueueEntry(i)    ((PKDEVICE_QUEUE_ENTRY)((PUCHAR)(i) + 0x78))
#define IopIrpThread(i)           (*(PVOID *)((PUCHAR)(i) + 0x98))

#define SL_PENDING_RETURNED  0x01
#define SL_INVOKE_ON_CANCEL  0x20
#define SL_INVOKE_ON_SUCCESS 0x40
#define SL_INVOKE_ON_ERROR   0x80

#define IRP_MJ_READ                     0x03
#define IRP_MJ_WRITE                    0x04
#define IRP_MJ_FLUSH_BUFFERS            0x09
#define IRP_MJ_INTERNAL_DEVICE_CONTROL  0x0F
#define IRP_MJ_SHUTDOWN                 0x10
#define DO_BUFFERED_IO                  0x00000004
#define DO_DIRECT_IO                    0x00000010
#define IRP_BUFFERED_IO                 0x00000010
#define IRP_DEALLOCATE_BUFFER           0x00000020
#define IRP_INPUT_OPERATION             0x00000040

#ifndef STATUS_MORE_PROCESSING_REQUIRED
#define STATUS_MORE_PROCESSING_REQUIRED ((NTSTATUS)0xC0000016L)
#endif
#ifndef STATUS_NO_SUCH_DEVICE
#define STATUS_NO_SUCH_DEVICE           ((NTSTATUS)0xC000000EL)
#endif
#ifndef STATUS_CANCELLED
#define STATUS_CANCELLED                ((NTSTATUS)0xC0000120L)
#endif

VOID NTAPI KeInitializeDeviceQueue(PKDEVICE_QUEUE DeviceQueue);
PDEVICE_OBJECT NTAPI IoGetAttachedDevice(PDEVICE_OBJECT DeviceObject);
BOOLEAN IopIsDevice(PVOID Object);
PIRP NTAPI IoAllocateIrp(CCHAR StackSize, BOOLEAN ChargeQuota);
VOID NTAPI IoFreeIrp(PIRP Irp);
VOID NTAPI IoAcquireCancelSpinLock(PKIRQL Irql);
VOID NTAPI IoReleaseCancelSpinLock(KIRQL Irql);
LONG NTAPI KeSetEvent(PKEVENT Event, LONG Increment, BOOLEAN Wait);

#endif
