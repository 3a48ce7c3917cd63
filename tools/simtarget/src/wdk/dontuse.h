/* dontuse.h - the WDK's list of deprecated CRT routines is advisory only; nothing to
 * declare here. */
