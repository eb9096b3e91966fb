"""Reading a kernel's signature: argument names and types, result types, and the namespace its
annotations and body are evaluated in (globals plus closure)."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .errors import KernelSyntaxError
from .types import ArrayType, DType


def kernel_signature(fn: Callable) -> tuple[list[str], list[Any], list[Any]]:
    """(arg names, arg types, result types) read from the function's annotations."""
    sig = inspect.signature(fn)
    ns = _namespace(fn)
    names, types = [], []
    for p in sig.parameters.values():
        t = _resolve_annotation(p.annotation, ns)
        if not isinstance(t, (ArrayType, DType)):
            hint = (" (the annotation is a string that names something outside the kernel's closure: do not use "
                    "'from __future__ import annotations' in a module that defines kernels)") if isinstance(t, str) else ""
            raise KernelSyntaxError(
                f"argument '{p.name}' needs a type annotation such as float32[4, 8] or int32, got {t!r}{hint}",
                file=inspect.getsourcefile(fn), line=fn.__code__.co_firstlineno, kernel=fn.__name__,
            )
        names.append(p.name)
        types.append(t)
    ret = _resolve_annotation(sig.return_annotation, ns)
    if ret is inspect.Signature.empty or ret is None:
        results = []
    elif isinstance(ret, tuple):
        results = list(ret)
    else:
        results = [ret]
    return names, types, results


def _namespace(fn: Callable) -> dict:
    ns = dict(fn.__globals__)
    from .generic import CALLER_NAMES

    caller = CALLER_NAMES.get()
    if caller is not None and caller[0] == fn.__code__.co_filename:
        ns.update(caller[1])
    if fn.__closure__:
        for n, c in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                ns[n] = c.cell_contents
            except ValueError:  # cell not yet filled
                pass
    ns.update(getattr(fn, "__allo_bindings__", None) or {})
    return ns


def _resolve_annotation(a, ns: dict):
    """Annotations may be strings (``from __future__ import annotations``): evaluate them where the
    kernel was defined, closure included, which ``inspect.signature(eval_str=True)`` does not do."""
    for _ in range(2):  # a quoted annotation under postponed evaluation is a string of a string
        if not isinstance(a, str):
            return a
        try:
            a = eval(a, ns)  # noqa: S307
        except Exception:
            return a
    return a


def is_kernel(obj) -> bool:
    if not inspect.isfunction(obj):
        return False
    try:
        ann = inspect.get_annotations(obj)
    except Exception:
        return False
    ns = _namespace(obj)
    params = inspect.signature(obj).parameters
    return bool(params) and all(isinstance(_resolve_annotation(ann.get(p), ns), (ArrayType, DType)) for p in params)
