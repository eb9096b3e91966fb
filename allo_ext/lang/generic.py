"""Generic kernels: binding type parameters, as Allo's ``instantiate=[...]`` and ``k[T, M](...)`` do.

Two kinds of generic kernel exist: Allo-syntax functions loaded by ``allo_ext.lang.source`` (their
type parameters were recorded when the PEP 695 header was rewritten) and this library's factories
(``def k(T, M): def k(...): ...; return k``). ``instantiate`` accepts both. An instance of an
Allo-syntax kernel is the same code with the parameters bound in ``__allo_bindings__``, which the
kernel's namespace (``signature._namespace``) puts above everything else.
"""
from __future__ import annotations

import contextvars
import inspect
import types

from .errors import KernelSyntaxError
from .source import generic_params

# Names of the frame that called ``customize`` (Allo resolves kernel names there too): applied to
# functions defined in that frame's file only, under the closure and the type bindings.
CALLER_NAMES: contextvars.ContextVar = contextvars.ContextVar("allo_caller_names", default=None)


def is_generic(fn) -> bool:
    return bool(generic_params(fn)) and not getattr(fn, "__allo_bindings__", None)


def instantiate(fn, args, *, where: str = ""):
    """``fn`` with its type parameters bound to ``args`` (a sequence of types and ints)."""
    if not isinstance(args, (list, tuple)):
        args = [args]
    args = list(args)
    params = generic_params(fn)
    if params is not None:
        suffix = None
        if len(args) == len(params) + 1 and isinstance(args[-1], str):
            suffix = args.pop()  # Allo: a trailing string names this instance (k[T, N, "QKT"] -> k_QKT)
        if len(params) != len(args):
            raise KernelSyntaxError(f"{where}kernel '{fn.__name__}' has {len(params)} type parameter(s) "
                                    f"[{', '.join(params)}] but was instantiated with {len(args)}: {args!r}")
        inst = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
        inst.__annotations__ = dict(fn.__annotations__)
        inst.__qualname__ = fn.__qualname__
        if suffix:
            inst.__name__ = f"{fn.__name__}_{suffix}"
        inst.__allo_bindings__ = dict(zip(params, args))
        inst.__allo_generic__ = fn
        for k, v in fn.__dict__.items():
            if not k.startswith("__allo_bindings"):
                inst.__dict__.setdefault(k, v)
        return inst
    if callable(fn) and not _has_typed_params(fn):
        try:
            return fn(*args)  # a factory of this library: types and sizes in, kernel out
        except TypeError as e:
            raise KernelSyntaxError(f"{where}cannot instantiate '{getattr(fn, '__name__', fn)}' with {args!r}: {e}") \
                from None
    raise KernelSyntaxError(f"{where}'{getattr(fn, '__name__', fn)}' is not generic: it has no type parameters "
                            "(write 'def k[T, N](...)' in Allo syntax, loaded with allo_ext.lang.source, or a "
                            "factory 'def k(T, N): ...')")


def _has_typed_params(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return bool(params) and all(p.annotation is not inspect.Parameter.empty for p in params)
