from allo_ext.compat import __getattr__  # noqa: F401
from allo_ext.schedule import BufferHandle


def MockBuffer(func, name, idx=None):  # noqa: N802
    return BufferHandle(func, name)
