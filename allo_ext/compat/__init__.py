"""Allo's Python API on top of allo_ext: ``import allo_ext.compat as allo``.

Kernels written for Allo (cornell-zhang/allo) use ``allo.customize(k, instantiate=[...])``,
``allo.grid``/``allo.reduction``, Allo's type names (``Int(N)``, ``UInt(N)``, ``int4``, ``bool``,
``float16``, ``ConstExpr``...), ``Partition.Complete`` and modules that cast their inputs. This
module maps those names onto the language in ``allo_ext.lang`` and the schedule in
``allo_ext.schedule``; Allo-syntax source files (PEP 695 generic headers) load with
``allo_ext.lang.source.load_allo_source``. What Allo has and we do not raises
``UnsupportedFeature`` naming the feature, never a silent difference.
"""
from __future__ import annotations

import builtins as _b
import contextlib
import enum
import inspect

import numpy as np

from ..lang import *  # noqa: F401,F403  (every name of our language: grid, exp, atan2, ...)
from ..lang import (AlloError, ArrayType, DType, Fixed, Float, Index, KernelSyntaxError, ScheduleError, UFixed,  # noqa: F401
                    bool_, ceil, erf, exp, float32, float64, floor, index, int1, int8, int16, int32, int64, log, sqrt,
                    tanh, uint8, uint16, uint32, uint64)
from ..lang import Int as _Int
from ..lang.implicit import allo_typing
from ..lang.generic import CALLER_NAMES, instantiate as _instantiate, is_generic
from ..lang.types import bfloat16, float16  # noqa: F401
from ..schedule import BufferHandle, LoopHandle, Schedule
from ..schedule import customize as _customize
from .errors import CompileExit, UnsupportedFeature, UnsupportedName
from .module import CompatCPUModule, compat_build

bool = bool_  # noqa: A001  (Allo's name for int1)


def Int(bits: int) -> DType:  # noqa: N802
    return _Int(bits)


def UInt(bits: int) -> DType:  # noqa: N802
    return _Int(bits, signed=False)


int2, int4, uint1, uint2, uint4, int128 = Int(2), Int(4), UInt(1), UInt(2), UInt(4), Int(128)


def Struct(fields):  # noqa: N802
    raise UnsupportedFeature("struct types (allo.ir.types.Struct) are not supported")


class _Wrapper:
    """``ConstExpr[int32]`` / ``Stateful[int32]``: a marker around a type."""

    def __init__(self, kind: str, inner=None):
        self.kind, self.inner = kind, inner

    def __getitem__(self, inner):
        return _Wrapper(self.kind, inner)

    def __repr__(self) -> str:
        return f"{self.kind}[{self.inner!r}]"


ConstExpr = _Wrapper("ConstExpr")
Stateful = _Wrapper("Stateful")


class Partition:
    """Allo's partition kinds (ints, as in Allo): ``s.partition(s.A, partition_type=Partition.Cyclic)``."""

    Complete = 0
    Block = 1
    Cyclic = 2


def grid(*dims, name: str | None = None, pipeline=False, unroll=False):
    """Python meaning (a kernel run as plain Python): every index tuple of ``dims``."""
    return np.ndindex(*[int(d) for d in dims])


reduction = grid


@contextlib.contextmanager
def meta_if(cond):
    yield


@contextlib.contextmanager
def meta_elif(cond):
    yield


@contextlib.contextmanager
def meta_else():
    yield


@contextlib.contextmanager
def meta_for(*args):
    yield


def _builtin(name, fn):
    def f(*args, name=None):
        return fn(*args)

    f.__name__ = name
    f.__allo_builtin__ = name
    return f


def _softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def _layernorm(x, gamma, beta, eps=1e-5):
    mean, var = np.mean(x, axis=-1, keepdims=True), np.var(x, axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def _array_builtin(name, fn):
    def f(*args, name=None, **kw):
        return fn(*args, **kw)

    f.__name__ = name
    f.__allo_builtin__ = name
    return f


# Array builtins: numpy meaning when a kernel runs as Python, loop nests when compiled (lang.array_ops)
matmul = _array_builtin("matmul", np.matmul)
bmm = _array_builtin("bmm", lambda a, b: np.einsum("ijk,ikn->ijn", a, b))
add = _array_builtin("add", np.add)
sub = _array_builtin("sub", np.subtract)
mul = _array_builtin("mul", np.multiply)
div = _array_builtin("div", np.divide)
copy = _array_builtin("copy", np.copy)
transpose = _array_builtin("transpose", lambda x, axes=None: np.transpose(x, axes))
view = _array_builtin("view", lambda x, shape: np.reshape(x, shape))
concat = _array_builtin("concat", lambda x, y, axis=0: np.concatenate((x, y), axis=axis))
softmax = _array_builtin("softmax", _softmax)
relu = _array_builtin("relu", lambda x: np.maximum(x, 0))
gelu = _array_builtin("gelu", _gelu)
layernorm = _array_builtin("layernorm", _layernorm)
tril = _array_builtin("tril", np.tril)
ones = _array_builtin("ones", lambda shape, dtype=None: np.ones(shape, dtype=getattr(dtype, "numpy", dtype)))
zeros = _array_builtin("zeros", lambda shape, dtype=None: np.zeros(shape, dtype=getattr(dtype, "numpy", dtype)))
linear = _array_builtin("linear", lambda x, w, bias=None: np.matmul(x, w.T) + (0 if bias is None else bias))

sin = _builtin("sin", np.sin)
cos = _builtin("cos", np.cos)
tan = _builtin("tan", np.tan)
log2 = _builtin("log2", np.log2)
log10 = _builtin("log10", np.log10)
power = _builtin("power", np.power)
abs = _builtin("abs", np.abs)  # noqa: A001


def customize(fn, instantiate=None, verbose: _b.bool = False, enable_tensor: _b.bool = False, context=None,
              lower_linalg: _b.bool = False, global_vars: dict | None = None, **unknown) -> Schedule:
    """Allo's ``customize``: compile ``fn`` (instantiated first if generic) into a Schedule.

    Names a kernel uses are looked up, as in Allo, in the caller's frame too (kernels and sizes
    defined inside a test function). Compile errors end with ``SystemExit`` as in Allo
    (``CompileExit``, which is also an ``AlloError`` carrying the message)."""
    if unknown:
        raise UnsupportedFeature(f"customize(): option(s) {', '.join(unknown)} are not supported")
    # enable_tensor=True asks Allo for its linalg-on-tensors lowering; kernels mean the same either
    # way, and ours are always compiled to memrefs, so the option only changes Allo's IR.
    frame = inspect.currentframe().f_back
    names = dict(frame.f_locals) if global_vars is None else dict(global_vars)
    token = CALLER_NAMES.set((frame.f_code.co_filename, names))
    try:
        try:
            if instantiate is not None:
                fn = _instantiate(fn, instantiate)
            elif is_generic(fn):
                raise KernelSyntaxError(f"kernel '{fn.__name__}' is generic: pass instantiate=[...] to customize")
            with allo_typing():
                s = _customize(fn)
        except UnsupportedFeature:
            raise
        except KernelSyntaxError as e:
            raise CompileExit(str(e)) from e
    finally:
        CALLER_NAMES.reset(token)
    s.__class__ = CompatSchedule
    s._caller = (frame.f_code.co_filename, names)
    s.inst_list = list(instantiate) if isinstance(instantiate, (list, tuple)) else []
    if verbose:
        print(s.module)
    return s


def _library_schedule(fn):
    """The schedule function a library module defines for ``fn`` (Allo's KERNEL2SCHEDULE):
    ``schedule_<name>``, compared without case and underscores (layer_norm -> schedule_layernorm)."""
    import sys

    mod = sys.modules.get(fn.__module__)
    key = fn.__name__.lower().replace("_", "")
    for n, v in vars(mod or object()).items():
        if n.startswith("schedule_") and n[9:].lower().replace("_", "") == key and callable(v):
            return v
    raise UnsupportedFeature(f"compose: no schedule found for kernel '{fn.__name__}' in {fn.__module__}")


class CompatSchedule(Schedule):
    """Our Schedule with Allo's ``build`` (input casting, ``target=`` names) and the primitives
    we cannot realise reported as such."""

    inst_list: list = []

    def compose(self, schs, id: str | None = None, instantiate=None):  # noqa: A002
        """Allo's ``compose``: one schedule or a list; ``instantiate=`` picks the instance of a
        generic sub-kernel (our instances are matched by their bindings, so it only checks)."""
        for sub in (schs if isinstance(schs, (list, tuple)) else [schs]):
            if inspect.isfunction(sub):  # a library kernel: customize it and apply its own schedule
                fn, sched = sub, _library_schedule(sub)
                token = CALLER_NAMES.set(getattr(self, "_caller", None))
                try:
                    sub = customize(fn, instantiate=instantiate, global_vars=(self._caller or (None, {}))[1])
                finally:
                    CALLER_NAMES.reset(token)
                sched(sub)
            Schedule.compose(self, sub)
        return self

    def build(self, target: str | None = None, mode: str | None = None, project: str | None = None, **options):
        token = CALLER_NAMES.set(getattr(self, "_caller", None))
        try:
            with allo_typing():
                return compat_build(self, target, mode, project, **options)
        finally:
            CALLER_NAMES.reset(token)

    def _unsupported(self, prim: str, why: str):
        raise UnsupportedFeature(f"schedule primitive '{prim}' is not supported: {why}")

    def reshape(self, *a, **k):
        self._unsupported("reshape", "buffer reshaping is not implemented")

    def to(self, *a, **k):
        self._unsupported("to", "streams/FIFOs between kernels are not implemented")

    def unfold(self, *a, **k):
        self._unsupported("unfold", "spatial unfolding of loops into PE arrays is not implemented")

    def parallel(self, *a, **k):
        self._unsupported("parallel", "parallel loops are not marked")

    def get_equivalent_variables(self, *a, **k):
        self._unsupported("get_equivalent_variables", "use-def analysis of Allo's IR is not provided")

    def fuse(self, *a, **k):
        self._unsupported("fuse", "loop fusion is not implemented")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise UnsupportedName(f"allo.{name} is not provided by allo_ext's Allo compatibility layer")
