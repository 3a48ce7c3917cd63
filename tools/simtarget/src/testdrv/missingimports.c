/*
 * missingimports.sys - a driver that imports two routines no kernel exports
 * (KsimNoSuchRoutine, ZwNoSuchService) next to one it does (DbgPrint).  The loader
 * must refuse it and name both missing imports.
 */
typedef long NTSTATUS;
__declspec(dllimport) unsigned long __cdecl DbgPrint(const char *Format, ...);
__declspec(dllimport) void __stdcall KsimNoSuchRoutine(void);
__declspec(dllimport) NTSTATUS __stdcall ZwNoSuchService(void *Handle);

NTSTATUS __stdcall DriverEntry(void *DriverObject, void *RegistryPath)
{
    (void)DriverObject; (void)RegistryPath;
    DbgPrint("missingimports: this must never run\n");
    KsimNoSuchRoutine();
    return ZwNoSuchService(0);
}
