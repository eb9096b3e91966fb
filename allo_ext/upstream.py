"""Write a library kernel of ours in Allo's own syntax, for sending upstream to cornell-zhang/allo.

Our kernels are factories (types and sizes in, kernel out) because Python 3.11 has no PEP 695
generics; Allo writes the same kernel as ``def k[T, M, N](X: "T[M, N]") -> "T[M, N]":``. Given one
instance of a factory, ``write_upstream`` emits:

- ``<name>.py``: the kernel and every kernel it calls, each with a generic header whose type
  parameters are the values the factory closed over (types, sizes, shapes, constants), its body as
  written in our source, calls to other kernels spelled ``k[T, M](...)``; ``INSTANTIATE``, the
  instance the file was written for; and ``schedule_<name>(s)``, our registered schedule replayed as
  Allo's schedule calls (``s.pipeline("k:j")``, ``s.partition(MockBuffer("k", "X"), ...)``);
- ``test_<name>.py``: a pytest file in Allo's style (customize with ``instantiate=``, schedule,
  build, compare) against ``<name>_golden.npz``, inputs and outputs of allo_ext's own CPU build.

Loading ``<name>.py`` back through ``allo_ext.lang.source`` (the path Allo-syntax kernels take
here) gives the same numbers; tests/test_upstream.py checks that for every library kernel against
torch. Helpers that run at compile time on index tuples (a feature of ours, not Allo's) are
written out as plain Python functions next to the kernels: Allo evaluates such calls only inside
``ConstExpr``, so kernels that use them need that change upstream, and the file says so.
"""
from __future__ import annotations

import ast
import builtins
import dataclasses
import inspect
import math
import os
import textwrap
import types

import numpy as np

from .lang.errors import AlloError
from .lang.module import _kernel_key
from .lang.signature import is_kernel, kernel_signature
from .lang.types import ArrayType, DType

# names of our language that Allo exports at its top level (allo.grid, allo.exp, ...)
_LANG = {"grid", "reduction", "exp", "log", "sqrt", "tanh", "erf", "floor", "ceil", "sin", "cos", "power"}
_TYPE_NAMES = {"float16", "float32", "float64", "bfloat16", "int1", "int8", "int16", "int32", "int64", "uint8",
               "uint16", "uint32", "uint64", "index", "bool"}


class UpstreamError(AlloError):
    """A kernel uses something that has no spelling in Allo's language."""


def _locals_of(fdef: ast.FunctionDef) -> set:
    out = {a.arg for a in fdef.args.args}
    for n in ast.walk(fdef):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store):
            out.add(n.id)
        elif isinstance(n, (ast.FunctionDef,)) and n is not fdef:
            out.add(n.name)
    return out


def _loaded(node) -> list[str]:
    seen = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in seen:
            seen.append(n.id)
    return seen


class Emitter:
    def __init__(self):
        self.kernels: dict = {}       # kernel key -> (emitted name, [(param, value)])
        self.order: list[str] = []    # kernel sources, callees first
        self.names: set = set()
        self.types: set = set()       # names imported from allo.ir.types
        self.lang: set = set()        # names imported from allo
        self.modules: set = set()     # plain imports (math)
        self.consts: dict = {}        # module-level constants
        self.helpers: dict = {}       # compile-time helper functions: name -> source
        self.notes: list[str] = []
        self.imports: set = set()     # extra import lines
        self._params: set = set()     # type parameter names of the kernel being written

    # ------------------------------------------------------------------ values as Allo source
    def value_src(self, v) -> str:
        if isinstance(v, DType):
            name = repr(v)
            if name in _TYPE_NAMES:
                self.types.add(name)
                return name
            if name.startswith(("int", "uint")) and name.lstrip("uint").isdigit():
                kind = "UInt" if name.startswith("uint") else "Int"
                self.types.add(kind)
                return f"{kind}({v.bits})"
            if "Fixed" in name:
                self.types.add("UFixed" if name.startswith("U") else "Fixed")
                return name
            raise UpstreamError(f"type {name} has no Allo spelling")
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return repr(v)
        if isinstance(v, (int, np.integer)):
            return repr(int(v))
        if isinstance(v, (float, np.floating)):
            f = float(v)
            if math.isinf(f) or math.isnan(f):
                return f'float("{f}")'
            return repr(f)
        if isinstance(v, (tuple, list)):
            inner = ", ".join(self.value_src(x) for x in v)
            return f"({inner},)" if isinstance(v, tuple) and len(v) == 1 else \
                (f"({inner})" if isinstance(v, tuple) else f"[{inner}]")
        if dataclasses.is_dataclass(v) and not isinstance(v, type) and callable(v):
            cls = type(v)  # a compile-time index map of ours (e.g. broadcasting): written out with its class
            if cls.__name__ not in self.helpers:
                self.helpers[cls.__name__] = textwrap.dedent(inspect.getsource(cls))
                self.imports.add("from dataclasses import dataclass")
                self.notes.append(f"'{cls.__name__}' is a compile-time index map (allo_ext calls it while "
                                  "compiling); Allo evaluates such calls only inside ConstExpr.")
            return repr(v)
        raise UpstreamError(f"value {v!r} ({type(v).__name__}) cannot be written as an Allo type argument")

    def _unique(self, base: str) -> str:
        name, k = base, 1
        while name in self.names:
            name = f"{base}_{k}"
            k += 1
        self.names.add(name)
        return name

    # ------------------------------------------------------------------ kernels
    def emit_kernel(self, fn) -> tuple[str, list]:
        key = _kernel_key(fn)
        if key in self.kernels:
            return self.kernels[key]
        try:
            src = textwrap.dedent(inspect.getsource(fn))
        except OSError as e:
            raise UpstreamError(f"cannot read the source of kernel '{fn.__name__}': {e}") from None
        fdef = ast.parse(src).body[0]
        fdef.decorator_list = []
        closure = {n: c.cell_contents for n, c in zip(fn.__code__.co_freevars, fn.__closure__ or ())}
        local = _locals_of(fdef)
        params, calls, helper_names = [], {}, {}
        for name in _loaded(fdef):
            if name in local:
                continue
            if name in closure:
                v = closure[name]
            elif name in fn.__globals__:
                v = fn.__globals__[name]
            elif hasattr(builtins, name):
                continue
            else:
                continue  # only in an annotation evaluated in the factory: resolved below
            if is_kernel(v):
                calls[name] = self.emit_kernel(v)
            elif isinstance(v, types.ModuleType):
                self.modules.add(v.__name__)
            elif callable(v) and getattr(v, "__allo_builtin__", None) or (name in _LANG and callable(v)):
                self.lang.add(name)
            elif isinstance(v, DType) and name not in closure:
                self.value_src(v)  # imports it
            elif inspect.isfunction(v):
                helper_names[name] = self.emit_helper(name, v)
            elif isinstance(v, np.ndarray):
                self.imports.add("import numpy as np")
                cname = self._unique(f"{fn.__name__}_{name}")
                self.consts[cname] = f"np.array({v.tolist()!r}, dtype=np.{v.dtype})"
                helper_names[name] = cname
            elif name in closure:
                params.append((name, v))
            elif isinstance(v, (int, float, bool, str, tuple)):
                self.consts[name] = self.value_src(v)
            else:
                raise UpstreamError(f"kernel '{fn.__name__}' uses '{name}' ({type(v).__name__}), which has no "
                                    "Allo spelling")
        # argument and result annotations: written as strings over the type parameters; where an
        # annotation names something only the factory knew, the instance's concrete type is used
        ns = dict(fn.__globals__, **{n: v for n, v in params})
        self._params = {n for n, _ in params}
        names, arg_types, res_types = kernel_signature(fn)
        for a, t in zip(fdef.args.args, arg_types):
            a.annotation = ast.Constant(self._annotation(a.annotation, t, ns))
        if fdef.returns is not None:
            want = res_types[0] if len(res_types) == 1 else tuple(res_types)
            fdef.returns = ast.Constant(self._annotation(fdef.returns, want, ns))
        pnames = [n for n, _ in params]
        fdef = _CallRewriter(calls, params, self).visit(fdef)
        for n in ast.walk(fdef):
            if isinstance(n, ast.Name) and n.id in helper_names:
                n.id = helper_names[n.id]
        name = self._unique(fn.__name__)
        fdef.name = name
        header = f"def {name}[{', '.join(pnames)}](" if pnames else f"def {name}("
        body = ast.unparse(fdef)
        first = body.index("(")
        text = header + body[first + 1:]
        self.kernels[key] = (name, params)
        self.order.append(text)
        return name, params

    def _annotation(self, node, t, ns) -> str:
        src = ast.unparse(node) if node is not None else ""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            src = node.value
        try:
            names = _loaded(ast.parse(src, mode="eval"))
            # a type named other than Allo names it (our bool_) is written out concretely instead
            foreign = [n for n in names if isinstance(ns.get(n), DType) and n not in _TYPE_NAMES
                       and n not in self._params]
            if not foreign and eval(src, dict(ns)) == t:  # noqa: S307
                for n in names:
                    if isinstance(ns.get(n), DType) and n in _TYPE_NAMES:
                        self.types.add(n)
                return src
        except Exception:  # noqa: BLE001
            pass
        if isinstance(t, tuple):
            return "(" + ", ".join(self._concrete(x) for x in t) + ")"
        return self._concrete(t)

    def _concrete(self, t) -> str:
        if isinstance(t, ArrayType):
            return f"{self.value_src(t.dtype)}[{', '.join(map(str, t.shape)) or '()'}]"
        return self.value_src(t)

    def emit_helper(self, name, fn) -> str:
        """Write a compile-time helper at module level; returns the name it is written under. A
        helper defined inside the factory gets the values it closed over as keyword defaults."""
        key = ("helper", id(fn))
        if key in self.kernels:
            return self.kernels[key]
        if "<locals>" not in fn.__qualname__ and name in self.helpers:
            return name
        emitted = self._unique(name) if "<locals>" in fn.__qualname__ else name
        self.names.add(emitted)
        self.kernels[key] = emitted
        text = textwrap.dedent(inspect.getsource(fn))
        if "<locals>" in fn.__qualname__:
            fdef = ast.parse(text).body[0]
            fdef.name = emitted
            for n, c in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
                v = c.cell_contents
                val = self.emit_helper(n, v) if inspect.isfunction(v) else self.value_src(v)
                fdef.args.kwonlyargs.append(ast.arg(n))
                fdef.args.kw_defaults.append(ast.parse(val, mode="eval").body)
            text = ast.unparse(fdef)
        self.helpers[emitted] = text
        self.notes.append(f"'{name}' is a compile-time helper on index tuples (allo_ext runs it while "
                          "compiling); Allo evaluates such calls only inside ConstExpr.")
        for n in fn.__code__.co_names:
            v = fn.__globals__.get(n)
            if inspect.isfunction(v) and not is_kernel(v):
                self.emit_helper(n, v)
            elif isinstance(v, types.ModuleType):
                self.modules.add(v.__name__)
            elif isinstance(v, (int, float, bool, str, tuple)) and not hasattr(builtins, n):
                self.consts[n] = self.value_src(v)
        return emitted


class _CallRewriter(ast.NodeTransformer):
    """``k(...)`` of a kernel the factory closed over becomes ``k[args](...)`` of its emitted
    generic form; each type argument is spelled as one of the caller's own parameters when one
    holds exactly that value, else as the value."""

    def __init__(self, calls, params, em):
        self.calls, self.params, self.em = calls, params, em

    def _arg(self, v):
        same = [n for n, pv in self.params if type(pv) is type(v) and pv == v]
        return ast.Name(same[0], ast.Load()) if len(same) == 1 else ast.parse(self.em.value_src(v), mode="eval").body

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.calls:
            name, params = self.calls[node.func.id]
            if params:
                elts = [self._arg(v) for _, v in params]
                node.func = ast.Subscript(ast.Name(name, ast.Load()),
                                          ast.Tuple(elts, ast.Load()) if len(elts) > 1 else elts[0], ast.Load())
            else:
                node.func = ast.Name(name, ast.Load())
        return node


def schedule_calls(fn, kernel_names: dict) -> list[str]:
    """Our registered schedule of ``fn``'s instance, replayed and written as Allo schedule calls."""
    from .kernels.registry import apply_schedules
    from .schedule import LoopHandle, customize

    s = customize(fn)
    apply_schedules(s, "default")
    sym_to_name = {sym: kernel_names.get(_kernel_key(f), sym) for sym, f in s.mb.py_functions.items()}
    loops_by_kernel = {k: [h.name for h in s.get_loops(k).values()] for k in s.kernels() if k in sym_to_name}

    def loop(h):
        k = sym_to_name.get(h.kernel, h.kernel)
        axis = h.name.split(".")[-1]
        names = loops_by_kernel.get(h.kernel, [])
        short = axis if sum(1 for n in names if n.split(".")[-1] == axis) == 1 else h.name
        return f'"{k}:{short}"'

    out = []
    for prim, args, kw in s.log:
        if prim in ("pipeline", "unroll"):
            h = args[0] if isinstance(args[0], LoopHandle) else LoopHandle(*s._split_ref(args[0]))
            opt = f", initiation_interval={kw.get('ii', 1)}" if prim == "pipeline" else f", factor={kw.get('factor', 0)}"
            out.append(f"s.{prim}({loop(h)}{opt})")
        elif prim == "partition":
            k, _, b = args[0].rpartition(":")
            kind = {"complete": "Complete", "block": "Block", "cyclic": "Cyclic"}[kw["kind"]]
            out.append(f's.partition(MockBuffer("{sym_to_name.get(k, k)}", "{b}"), partition_type=Partition.{kind}, '
                       f'dim={kw["dim"]}, factor={kw["factor"]})')
        elif prim == "dataflow":
            out.append(f's.dataflow("{sym_to_name.get(args[0], args[0])}")')
        elif prim == "split":
            out.append(f"s.split({loop(args[0])}, {kw['factor']})")
        elif prim == "reorder":
            out.append(f"s.reorder({', '.join(loop(a) for a in args)})")
        else:
            raise UpstreamError(f"schedule primitive '{prim}' has no Allo spelling here")
    return out


def write_upstream(kernel_name: str, args: list, out_dir: str, *, overwrite: bool = False,
                   seed: int = 0) -> dict:
    """Write ``<kernel>.py``, ``test_<kernel>.py`` and ``<kernel>_golden.npz`` into ``out_dir``."""
    import allo_ext.kernels.nn  # noqa: F401  (registers the library)
    from .kernels.registry import KERNELS

    if kernel_name not in KERNELS:
        raise UpstreamError(f"no library kernel named '{kernel_name}'; kernels: {', '.join(sorted(KERNELS))}")
    factory = KERNELS[kernel_name].factory
    try:
        fn = factory(*args)
    except Exception as e:  # noqa: BLE001
        sig = inspect.signature(getattr(factory, "__wrapped__", factory))
        raise UpstreamError(f"cannot instantiate {kernel_name}{sig} with {args!r}: {e}") from None
    em = Emitter()
    top, params = em.emit_kernel(fn)
    names = {k: v[0] for k, v in em.kernels.items()}
    sched = schedule_calls(fn, names)
    inst = "[" + ", ".join(em.value_src(v) for _, v in params) + "]" if params else "None"

    lines = [f'"""{kernel_name} from allo_ext, in Allo\'s syntax (written by `allo-ext upstream`).', "",
             f"Written for the instance {kernel_name}({', '.join(em.value_src(a) for a in args)}); the kernels "
             "are generic over", "the values that instance depends on (INSTANTIATE below).", '"""']
    lines += [f"# NOTE: {n}" for n in dict.fromkeys(em.notes)]
    lines += sorted(em.imports) + ["import allo"]
    lines += [f"import {m}" for m in sorted(em.modules)]
    if em.lang:
        lines += [f"from allo import {', '.join(sorted(em.lang))}"]
    lines += ["from allo import Partition", "from allo.ir.utils import MockBuffer"]
    if em.types:
        lines += [f"from allo.ir.types import {', '.join(sorted(em.types))}"]
    lines += [""]
    lines += [f"{k} = {v}" for k, v in em.consts.items()]
    for h in em.helpers.values():
        lines += ["", "", h.rstrip()]
    for k in em.order:
        lines += ["", "", k]
    lines += ["", "", f"INSTANTIATE = {inst}", "", "",
              f"def schedule_{top}(s):"] + [f"    {c}" for c in sched] + ["    return s", ""]
    kernel_src = "\n".join(lines)

    # golden data: allo_ext's own CPU build of the instance
    from .schedule import customize

    s = customize(fn)
    arg_names, arg_types, res_types = kernel_signature(fn)
    rng = np.random.default_rng(seed)
    inputs = []
    for t in arg_types:
        if isinstance(t, ArrayType):
            if t.dtype.is_float:
                inputs.append(np.asarray(rng.standard_normal(t.shape), dtype=t.dtype.numpy))
            else:
                inputs.append(np.asarray(rng.integers(-8, 8, size=t.shape), dtype=t.dtype.numpy))
        else:
            inputs.append(np.array(1e-5 if t.is_float else 3, dtype=t.numpy))
    outs = s.build("llvm")(*[x if isinstance(t, ArrayType) else x.item() for x, t in zip(inputs, arg_types)])
    outs = outs if isinstance(outs, tuple) else (outs,)
    test_src = f'''"""Allo-style test of {top} (written by `allo-ext upstream`): the golden data are allo_ext's
own CPU results for the same inputs, so this checks that Allo and allo_ext agree."""
import os

import numpy as np

import allo
from {top} import {top}, schedule_{top}, INSTANTIATE


def test_{top}():
    s = allo.customize({top}, instantiate=INSTANTIATE)
    schedule_{top}(s)
    mod = s.build()
    golden = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "{top}_golden.npz"))
    inputs = [golden[f"in{{k}}"] for k in range({len(inputs)})]
    inputs = [x.item() if x.ndim == 0 else x for x in inputs]
    outs = mod(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    assert len(outs) == {len(outs)}
    for k, out in enumerate(outs):
        np.testing.assert_allclose(out, golden[f"out{{k}}"], rtol=1e-5, atol=1e-5)


if __name__ == "__main__":
    test_{top}()
'''
    os.makedirs(out_dir, exist_ok=True)
    files = {f"{top}.py": kernel_src, f"test_{top}.py": test_src}
    paths = [os.path.join(out_dir, f) for f in list(files) + [f"{top}_golden.npz"]]
    existing = [p for p in paths if os.path.exists(p)]
    if existing and not overwrite:
        raise UpstreamError(f"refusing to overwrite {', '.join(existing)} (pass --force)")
    for f, text in files.items():
        with open(os.path.join(out_dir, f), "w") as fh:
            fh.write(text)
    np.savez(os.path.join(out_dir, f"{top}_golden.npz"),
             **{f"in{k}": np.asarray(x) for k, x in enumerate(inputs)},
             **{f"out{k}": np.asarray(o) for k, o in enumerate(outs)})
    return {"kernel": top, "instantiate": [v for _, v in params], "files": paths, "schedule": sched,
            "notes": list(dict.fromkeys(em.notes))}
