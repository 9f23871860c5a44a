"""The package's version (pyproject.toml's), in a module of its own so the runner can record
it without importing the package's top-level API."""

__version__ = "0.1.0"
