import shutil


def is_available(backend: str = "vivado_hls") -> bool:
    """Vitis/Vivado HLS are not installed on these machines; say so as Allo does."""
    return shutil.which({"vitis_hls": "vitis_hls", "vivado_hls": "vivado_hls"}.get(backend, backend)) is not None
