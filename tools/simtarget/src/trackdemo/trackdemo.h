/*
 * trackdemo.h - the demo driver's device name and I/O control codes.
 *
 * The simulated kernel's system loop sends these as IRP_MJ_DEVICE_CONTROL requests:
 * TICK on every pass, the others when the machine or the debugger asks for a scenario.
 * All are METHOD_BUFFERED, FILE_ANY_ACCESS on FILE_DEVICE_UNKNOWN (CTL_CODE(0x22,
 * 0x800 + n, 0, 0)) and need no buffers.
 */
#ifndef TRACKDEMO_H
#define TRACKDEMO_H

#define TRACKDEMO_DEVICE_NAME u"\\Device\\TrackDemo"

#define IOCTL_TRACKDEMO_TICK 0x222000UL      /* periodic work through every tracked class */
#define IOCTL_TRACKDEMO_LEAK 0x222004UL      /* plant the deliberate leaks (once) */
#define IOCTL_TRACKDEMO_OVERWRITE 0x222008UL /* damage a guard, then TRACKVALIDATEALLOCATED */
#define IOCTL_TRACKDEMO_STATS 0x22200CUL     /* TRACKSTATS */
#define IOCTL_TRACKDEMO_DUMP 0x222010UL      /* TRACKDUMPALLOCATED */
#define IOCTL_TRACKDEMO_VALIDATE 0x222014UL  /* TRACKVALIDATEALLOCATED */

#endif /* TRACKDEMO_H */
