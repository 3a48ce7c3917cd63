"""Symbols: symbol path and stores, PE images, DBG files, PDB 2.0 and 7.0, indexes.

Spec: symbols.md. This package never imports the console or the protocol.
"""
