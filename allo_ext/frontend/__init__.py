"""The PyTorch frontend: ``torch.export`` graph -> library kernel calls -> one MLIR module."""
from .compile import CompiledModel, estimate, export, from_pytorch, trace
from .errors import BatchMixingError, UnsupportedOpError
from .importer import LOWERINGS, LoweringContext, register_lowering

__all__ = ["from_pytorch", "trace", "export", "estimate", "CompiledModel", "UnsupportedOpError", "BatchMixingError", "register_lowering",
           "LoweringContext", "LOWERINGS"]
