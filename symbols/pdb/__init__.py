"""PDB files: one MSF reader for both generations (2.0 "JG" and 7.0 "DS"), and the streams in them."""
