"""Built-in bang extensions, one module each, written only against ``kdcon.api``."""
