from allo_ext.compat import __getattr__  # noqa: F401
