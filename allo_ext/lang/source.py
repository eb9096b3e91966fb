"""Load kernels written in Allo's own syntax from source (a file or text) on Python 3.11.

Allo writes generic kernels with PEP 695 headers, ``def k[T, M: int32](A: "T[M]") -> "T[M]":``,
which Python 3.11 cannot parse. The loader rewrites each such header to ``def k(...)`` before
parsing, keeping every line where it was (so errors point at the user's line), records the type
parameters of each rewritten function, and compiles the module with postponed annotations, since
annotations may name a type parameter that only exists once the kernel is instantiated
(``customize(k, instantiate=[float32, 8])`` or ``k[float32, 8](...)`` inside another kernel).

The rewritten text is what ``inspect.getsource`` returns for those functions (it is placed in
``linecache``), so the kernel compiler reads the same lines Python executed.
"""
from __future__ import annotations

import __future__
import ast
import importlib.abc
import importlib.util
import io
import itertools
import linecache
import os
import sys
import tokenize
import types

from .errors import KernelSyntaxError

# (filename, first line of the function incl. decorators) -> type parameter names, in order.
GENERIC_PARAMS: dict[tuple[str, int], list[str]] = {}
_counter = itertools.count()


def rewrite_generics(text: str) -> tuple[str, dict[int, list[str]]]:
    """``text`` with every ``def name[params](`` turned into ``def name(``, line numbers kept.

    Returns the new text and ``{line of the def: [type parameter names]}``."""
    toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))

    def pos(t):  # absolute offset of a token's (row, col) start
        return offsets[t[0] - 1] + t[1]

    edits, found = [], {}
    for k in range(len(toks) - 2):
        a, b, c = toks[k], toks[k + 1], toks[k + 2]
        if not (a.type == tokenize.NAME and a.string == "def" and b.type == tokenize.NAME and c.string == "["):
            continue
        depth, j = 0, k + 2
        while j < len(toks):
            s = toks[j].string
            if s in "([{" and toks[j].type == tokenize.OP:
                depth += 1
            elif s in ")]}" and toks[j].type == tokenize.OP:
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j + 1 >= len(toks) or toks[j + 1].string != "(":
            raise KernelSyntaxError(f"cannot read the generic header of '{b.string}': expected '(' after ']'",
                                    line=a.start[0])
        start, end = pos(c.start), pos(toks[j + 1].start)
        found[a.start[0]] = _param_names(toks[k + 2:j + 1], b.string, a.start[0])
        # '[' becomes '(', the rest of '[...](' blanks (newlines kept): every later line and column
        # stays where it was, so line numbers and indentation (dedent of nested kernels) still hold
        span = text[start + 1:end + 1]
        edits.append((start, end + 1, "(" + "".join(ch if ch == "\n" else " " for ch in span)))
    out, last = [], 0
    for s, e, rep in edits:
        out.append(text[last:s])
        out.append(rep)
        last = e
    out.append(text[last:])
    return "".join(out), found


def _param_names(toks, fname: str, line: int) -> list[str]:
    """Names of the type parameters in the tokens ``[ ... ]``: a NAME right after ``[`` or a
    top-level comma (bounds such as ``K: int32`` and comments are skipped)."""
    names, depth, expect = [], 0, False
    for t in toks:
        if t.type == tokenize.OP and t.string in "([{":
            depth += 1
            expect = depth == 1
            continue
        if t.type == tokenize.OP and t.string in ")]}":
            depth -= 1
            continue
        if t.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            continue
        if depth == 1 and t.type == tokenize.OP and t.string == ",":
            expect = True
            continue
        if expect and depth == 1:
            if t.type == tokenize.OP and t.string in ("*", "**"):
                continue
            if t.type != tokenize.NAME:
                raise KernelSyntaxError(f"type parameter {t.string!r} of '{fname}' is not a name", line=line)
            names.append(t.string)
        expect = False
    return names


def compile_allo_source(text: str, filename: str):
    """Rewrite, register the generic functions, publish the lines to linecache, and compile."""
    new, found = rewrite_generics(text)
    try:
        tree = ast.parse(new, filename)
    except SyntaxError as e:
        raise KernelSyntaxError(f"syntax error: {e.msg}", file=filename, line=e.lineno) from None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.lineno in found:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            GENERIC_PARAMS[(filename, first)] = found[node.lineno]
    # mtime None: linecache.checkcache leaves the entry alone, so inspect reads these lines
    linecache.cache[filename] = (len(new), None, new.splitlines(keepends=True), filename)
    flags = __future__.annotations.compiler_flag
    return compile(tree, filename, "exec", flags=flags, dont_inherit=True)


def load_allo_source(source: str | os.PathLike | None = None, *, text: str | None = None,
                     module_name: str | None = None, namespace: dict | None = None) -> types.ModuleType:
    """Execute Allo-syntax Python (from the file ``source`` or from ``text``) as a new module.

    ``namespace`` pre-populates the module's globals (e.g. ``{"allo": allo_ext.compat}``)."""
    if (source is None) == (text is None):
        raise ValueError("give exactly one of a file path or text=")
    if text is None:
        filename = os.path.abspath(os.fspath(source))
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    else:
        filename = f"<allo-source-{next(_counter)}>"
    name = module_name or os.path.splitext(os.path.basename(filename))[0].strip("<>").replace("-", "_")
    mod = types.ModuleType(name)
    mod.__file__ = filename
    if namespace:
        mod.__dict__.update(namespace)
    code = compile_allo_source(text, filename)
    sys.modules[name] = mod  # decorators such as @dataclass look their module up there
    try:
        exec(code, mod.__dict__)  # noqa: S102
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return mod


def generic_params(fn) -> list[str] | None:
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    return GENERIC_PARAMS.get((code.co_filename, code.co_firstlineno))


class AlloSourceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import hook: modules whose file lies under one of ``roots`` load through the rewriter.

    ``packages`` maps a dotted package prefix to a directory, for packages that live elsewhere
    than their import name suggests (``{"allo.library": ".../upstream/allo/library"}``)."""

    def __init__(self, roots=(), packages: dict | None = None):
        self.roots = [os.path.abspath(r) for r in roots]
        self.packages = {k: os.path.abspath(v) for k, v in (packages or {}).items()}

    def _path_for(self, fullname, path):
        for pkg, d in self.packages.items():
            if fullname.startswith(pkg + "."):
                rest = fullname[len(pkg) + 1:].split(".")
                cand = os.path.join(d, *rest) + ".py"
                if os.path.isfile(cand):
                    return cand
        for d in (path or sys.path):
            cand = os.path.join(os.path.abspath(d or "."), fullname.rpartition(".")[2] + ".py")
            if os.path.isfile(cand) and any(cand.startswith(r + os.sep) for r in self.roots):
                return cand
        return None

    def find_spec(self, fullname, path, target=None):
        p = self._path_for(fullname, path)
        if p is None:
            return None
        return importlib.util.spec_from_file_location(fullname, p, loader=self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename = module.__spec__.origin
        with open(filename, encoding="utf-8") as f:
            text = f.read()
        module.__file__ = filename
        exec(compile_allo_source(text, filename), module.__dict__)  # noqa: S102

    def install(self):
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        return self
