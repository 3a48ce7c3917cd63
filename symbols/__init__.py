"""Symbols: symbol path and stores, PE images, DBG files, PDB 2.0 and 7.0, indexes.

Spec: symbols.md. This package never imports the console or the protocol.

Where to start:

* ``session.SymbolSession(path)``: the module list of a debugging session;
  ``add_module(image_name, base, size, timestamp=, checksum=, read=)``, then
  ``name_for``, ``near``, ``match``, ``address_of``, ``find_type``, ``lm_rows``
  (data; ``kdcon.render.symbols`` prints it as WinDbg does); ``set_path`` and
  ``reload`` as ``.sympath`` and ``.reload`` do.
* ``module.ModuleSymbols``: one module, lazily loaded, with its ``lm`` state.
* ``path.SymbolPath``, ``locate.SymbolLocator``, ``store`` (layouts), ``match``
  (keys and verdicts), ``safepath`` (names that cannot leave a root).
* ``pe.read_image`` / ``pe.read_image_from_memory`` / ``pe.identify_from_memory``,
  ``dbg.read_dbg``, ``pdb.open_pdb``; ``pewriter`` and ``dbgwriter`` build fixtures.
* ``unwindinfo``: x64 RUNTIME_FUNCTION and UNWIND_INFO, the one decoder.
* ``index.SymbolIndex``: address and name indexes over ``model.SymbolRecord``.
"""
