"""The PyTorch frontend: ``torch.export`` graph -> library kernel calls -> one MLIR module."""
from .compile import CompiledModel, export, from_pytorch, trace
from .errors import UnsupportedOpError
from .importer import LOWERINGS, LoweringContext, register_lowering

__all__ = ["from_pytorch", "trace", "export", "CompiledModel", "UnsupportedOpError", "register_lowering",
           "LoweringContext", "LOWERINGS"]
