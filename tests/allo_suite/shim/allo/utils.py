from allo_ext.compat import __getattr__  # noqa: F401
from allo_ext.compat.errors import UnsupportedFeature


def get_np_struct_type(*a, **k):
    raise UnsupportedFeature("struct types (allo.utils.get_np_struct_type) are not supported")
