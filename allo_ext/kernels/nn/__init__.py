"""``allo_ext.kernels.nn``: the neural-network kernels that JetFormer-family models need.

Each submodule holds kernels next to their schedules; all are registered in
``allo_ext.kernels.KERNELS``.
"""
from .activation import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .bitlinear import *  # noqa: F401,F403
from .broadcast import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .norm import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .gather import *  # noqa: F401,F403
from .pointwise import *  # noqa: F401,F403
from .reduction import *  # noqa: F401,F403
