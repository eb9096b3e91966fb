"""allo-ext: PyTorch jet taggers through MLIR to CPU code, HLS C++ and simulated RTL."""
from .lang import *  # noqa: F401,F403
from .lang import __all__ as _lang_all
from .schedule import LoopHandle, Schedule, customize

__all__ = list(_lang_all) + ["customize", "Schedule", "LoopHandle"]
__version__ = "0.1.0"
