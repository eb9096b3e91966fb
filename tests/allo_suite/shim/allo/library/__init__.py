"""Allo's library package: its modules are the vendored upstream files (see allo/__init__.py)."""
