"""Allo's own MLIR bindings, for the library files that import them: the same upstream bindings
as torch_mlir's."""
import sys

from torch_mlir import ir  # noqa: F401
from torch_mlir import dialects  # noqa: F401
from torch_mlir.dialects import affine, arith, func, memref  # noqa: F401

sys.modules[__name__ + ".ir"] = ir
sys.modules[__name__ + ".dialects"] = dialects
for _n in ("affine", "arith", "func", "memref"):
    sys.modules[f"{__name__}.dialects.{_n}"] = getattr(dialects, _n)
