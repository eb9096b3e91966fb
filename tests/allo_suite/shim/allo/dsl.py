from allo_ext.compat import *  # noqa: F401,F403
from allo_ext.compat import __getattr__  # noqa: F401
