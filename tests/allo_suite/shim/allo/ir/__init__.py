from . import types, utils  # noqa: F401
