from . import hls  # noqa: F401
