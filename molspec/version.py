"""molspec's version (its own module, so that any stage can record it without importing the package API)."""

__version__ = "0.1.0"
