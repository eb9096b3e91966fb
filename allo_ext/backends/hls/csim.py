"""target="vitis_hls", mode="csim": the HLS C++ compiled by g++ into a numpy callable.

This is the open stand-in for Vitis sw_emu. The project directory holds kernel.cpp, kernel.h (and
kernel_weights.h) exactly as ``target="vhls"`` prints them, plus ``csim_main.cpp``: a C-ABI wrapper
that takes a batch count and contiguous batched arrays and calls the top function once per item.

Calling convention of the Python callable: each array argument has either exactly the kernel's
shape or an extra leading batch dimension B. If any argument is batched, the kernel runs B times
(outputs get the leading B); batched arguments must agree on B, and arguments given with the
kernel's own shape (weights, say) and scalars are passed unchanged to every item. With no batched
argument the kernel runs once and the outputs have the kernel's shapes. A kernel whose shapes start
with 1 (a model compiled for one jet per call) also takes (B, ...) in place of (1, ...): its
outputs that start with 1 then come back as (B, ...) too.

Float outputs are poisoned with a NaN payload before the call, and an element still holding it
afterwards raises (as in the llvm backend).

Builds are cached under ``$ALLO_EXT_CACHE/csim`` (default ``~/.cache/allo_ext/csim``), keyed by a
hash of the sources, the compile flags, the compiler's version and the ap_types location.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from ...cache import atomic_write_text, cache_root as shared_cache_root
from ...lang.errors import AlloError, CallError, ToolNotFoundError
from ..poison import run_poisoned
from . import cpp
from torch_mlir import ir

from ...passes.safety import insert_runtime_checks, trap_message
from .emit import HLSModule, Port, build_vhls, emit_module

# -fwrapv: MLIR integer arithmetic wraps, C++ signed overflow would be undefined.
# -ffp-contract=off: no fused multiply-add, so results match the llvm backend's separate mul and add.
CXXFLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-fwrapv", "-ffp-contract=off", "-pthread")
WRAPPER = "csim_main.cpp"
MIN_STACK = 8 << 20


class CSimCompileError(AlloError):
    """g++ rejected the generated C++; the message shows the failing lines and the kernels they came from."""


# ---------------------------------------------------------------------------- tools
def ap_types_dir() -> Path:
    """The Xilinx ap_types headers shipped inside the hls4ml wheel (found without importing hls4ml)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        raise ToolNotFoundError("the ap_types headers (ap_int.h, ap_fixed.h) for C simulation come from the hls4ml "
                                "package, which is not installed: run `pip install hls4ml==1.3.0`")
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "templates" / "vivado" / "ap_types"
        if (d / "ap_int.h").is_file():
            return d
    raise ToolNotFoundError(f"hls4ml is installed at {list(spec.submodule_search_locations)} but has no "
                            "templates/vivado/ap_types/ap_int.h: reinstall it with `pip install hls4ml==1.3.0`")


def find_compiler(cxx: str = "g++") -> str:
    path = shutil.which(cxx)
    if path is None:
        raise ToolNotFoundError(f"C++ compiler '{cxx}' not found on PATH (needed for C simulation): install it "
                                "with `apt-get install g++`")
    return path


@functools.lru_cache(maxsize=8)
def _compiler_version(path: str, mtime: float) -> str:
    r = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return r.stdout.splitlines()[0] if r.stdout else f"{path} (unknown version)"


def compiler_version(path: str) -> str:
    return _compiler_version(path, os.path.getmtime(path))


def cache_root() -> Path:
    return shared_cache_root("csim")


# ---------------------------------------------------------------------------- wrapper
def numpy_dtype(p: Port) -> np.dtype:
    if p.dtype is not None:
        return np.dtype(p.dtype.numpy)
    plain = {"float": np.float32, "double": np.float64, "bool": np.bool_, "int": np.int32}
    if p.ctype in plain:
        return np.dtype(plain[p.ctype])
    m = re.fullmatch(r"(u?)int(\d+)_t", p.ctype)
    if m:
        return np.dtype(f"{'u' if m.group(1) else ''}int{m.group(2)}")
    raise AlloError(f"no numpy type for C type '{p.ctype}' of port '{p.name}'")


def raw_ctype(p: Port) -> str:
    """The C type of the numpy storage of one element of ``p``."""
    dt = numpy_dtype(p)
    return {"float32": "float", "float64": "double", "bool": "bool"}.get(dt.name, f"{dt.name}_t")


def wrapper_source(hls: HLSModule, stack_bytes: int) -> str:
    fields, params, call_args, pre, post = ["int64_t allo_n;"], ["int64_t allo_n"], [], [], []
    for p in hls.ports:
        raw = raw_ctype(p)
        size = int(np.prod(p.shape, dtype=np.int64)) if p.shape else 1
        const = "const " if p.const else ""  # a kernel may write its inputs: then they are not const
        if not p.is_array:
            fields.append(f"{raw} {p.name};")
            params.append(f"{raw} {p.name}")
            if cpp.is_plain(p.ctype):
                call_args.append(f"allo_a.{p.name}")
            else:
                # ap types convert from the numpy value (fixed point: from a double, with the type's modes)
                pre.append(f"{p.ctype} {p.name}_v; {p.name}_v = allo_a.{p.name};")
                call_args.append(f"{p.name}_v")
            continue
        fields.append(f"{const}{raw} *{p.name};")
        params.append(f"{const}{raw} *{p.name}")
        if p.is_output:
            item = f"(allo_a.{p.name} + allo_b * {size})"
        else:  # stride 0 passes the same array to every item of the batch
            fields.append(f"int64_t allo_stride_{p.name};")
            params.append(f"int64_t allo_stride_{p.name}")
            item = f"(allo_a.{p.name} + allo_b * allo_a.allo_stride_{p.name})"
        if cpp.is_plain(p.ctype) and p.ctype == raw:
            src = item
        else:  # ap types: convert element by element through a temporary
            # ap types: convert element by element through a temporary (fixed point from and to double,
            # by ap_fixed's own conversions: quantised with the type's modes on the way in, exact out)
            tmp = f"{p.name}_t"
            pre.append(f"std::vector<{p.ctype}> {tmp}({size});")
            if not p.is_output:
                pre.append(f"for (int64_t allo_e = 0; allo_e < {size}; ++allo_e) {tmp}[allo_e] = {item}[allo_e];")
            else:
                val = f"{tmp}[allo_e].to_double()" if "fixed" in p.ctype else f"{tmp}[allo_e]"
                post.append(f"for (int64_t allo_e = 0; allo_e < {size}; ++allo_e) {item}[allo_e] = ({raw}){val};")
            src = f"{tmp}.data()"
        if len(p.shape) >= 2:
            dims = "".join(f"[{d}]" for d in p.shape[1:])
            src = f"reinterpret_cast<{const}{p.ctype} (*){dims}>({src})"
        call_args.append(src)
    body = [f"      {x}" for x in pre] + [f"      {hls.functions[hls.top].cpp_name}({', '.join(call_args)});"] \
        + [f"      {x}" for x in post]
    init = ", ".join(["allo_n"] + [x for p in hls.ports for x in
                                   ([p.name, f"allo_stride_{p.name}"] if p.is_array and not p.is_output else [p.name])])
    return "\n".join([
        f"// C ABI over HLS kernel '{hls.top}' for ctypes (C simulation only), generated by allo-ext.",
        "// Including kernel.cpp keeps the build to one translation unit: one compiler run, not two.",
        '#include "kernel.cpp"',
        "#include <pthread.h>",
        "#include <vector>",
        "",
        "namespace {",
        "struct allo_batch_args {",
        *[f"  {x}" for x in fields],
        "};",
        "",
        "void *allo_batch_body(void *allo_p) {",
        "  const allo_batch_args &allo_a = *static_cast<allo_batch_args *>(allo_p);",
        "  for (int64_t allo_b = 0; allo_b < allo_a.allo_n; ++allo_b) {",
        "    {",
        *body,
        "    }",
        "  }",
        "  return nullptr;",
        "}",
        "}  // namespace",
        "",
        "// The first failed bounds or division check (see allo_ext/passes/safety.py); read and cleared by Python.",
        "static long long allo_trap_state[4];",
        'extern "C" void allo_ext_trap(long long site, long long a, long long b) {',
        "  if (!allo_trap_state[0]) { allo_trap_state[0] = 1; allo_trap_state[1] = site; "
        "allo_trap_state[2] = a; allo_trap_state[3] = b; }",
        "}",
        'extern "C" int allo_csim_trap(long long *out) {',
        "  int hit = (int)allo_trap_state[0];",
        "  for (int k = 0; k < 3; ++k) out[k] = allo_trap_state[k + 1];",
        "  allo_trap_state[0] = 0;",
        "  return hit;",
        "}",
        "",
        "// HLS code keeps every buffer on the stack: run the batch on a thread whose stack holds them all.",
        f"extern \"C\" int allo_csim_batch({', '.join(params)}) {{",
        f"  allo_batch_args allo_a{{{init}}};",
        "  pthread_attr_t allo_attr;",
        "  pthread_attr_init(&allo_attr);",
        f"  pthread_attr_setstacksize(&allo_attr, {stack_bytes});",
        "  pthread_t allo_t;",
        "  int allo_rc = pthread_create(&allo_t, &allo_attr, allo_batch_body, &allo_a);",
        "  pthread_attr_destroy(&allo_attr);",
        "  if (allo_rc != 0) return allo_rc;",
        "  return pthread_join(allo_t, nullptr);",
        "}",
        "",
    ])


# ---------------------------------------------------------------------------- batching
class BatchPlan:
    """How a call's arguments are batched (see the module docstring); checks dtypes and shapes.

    ``batch`` is B or None (one call), ``batched[k]`` whether input k carries the batch, and
    ``style`` is "extra" (a new leading B) or "replace" (B in place of the kernel's leading 1)."""

    def __init__(self, kernel: str, inputs: list[Port], args):
        self.batch, self.style, self.batched = None, None, []
        for p, a in zip(inputs, args):
            if not p.is_array:
                self.batched.append(False)
                continue
            arr = np.asarray(a)
            dt = numpy_dtype(p)
            if arr.dtype != dt:
                raise CallError(f"argument '{p.name}' of kernel '{kernel}': expected dtype {dt}, got {arr.dtype}")
            shape = tuple(p.shape)
            if arr.shape == shape:
                b, form = None, None
            elif arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
                b, form = arr.shape[0], "extra"
            elif shape and shape[0] == 1 and arr.ndim == len(shape) and arr.shape[1:] == shape[1:]:
                b, form = arr.shape[0], "replace"  # a kernel compiled for batch 1 called with a batch
            else:
                lead = (f", or ({'B, ' + ', '.join(map(str, shape[1:])) if len(shape) > 1 else 'B'}) in place of the "
                        "leading 1") if shape and shape[0] == 1 else ""
                raise CallError(f"argument '{p.name}' of kernel '{kernel}': expected shape {shape} or "
                                f"(B, {', '.join(map(str, shape))}) for a batch{lead}, got {arr.shape}")
            if b is not None:
                if self.batch is not None and b != self.batch:
                    raise CallError(f"kernel '{kernel}': argument '{p.name}' has a batch of {b} but an earlier "
                                    f"argument has {self.batch}; batched arguments must agree")
                if self.style is not None and form != self.style:
                    raise CallError(f"kernel '{kernel}': argument '{p.name}' is batched differently from an earlier "
                                    "argument (a new leading dimension vs. the kernel's leading 1 replaced by B); "
                                    "use one form for all")
                self.batch, self.style = b, form
            self.batched.append(b is not None)

    def output_shape(self, p: Port) -> tuple:
        shape = tuple(p.shape)
        if self.batch is None:
            return shape
        if self.style == "replace" and shape and shape[0] == 1:
            return (self.batch,) + shape[1:]
        return (self.batch,) + shape

    def item_args(self, args, b: int) -> list:
        """The arguments of batch item ``b``, each with the kernel's own shape."""
        return [(np.asarray(a)[b:b + 1] if self.style == "replace" else np.asarray(a)[b]) if batched else a
                for a, batched in zip(args, self.batched)]


# ---------------------------------------------------------------------------- build
def _compile(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """One compiler run (a separate function so tests can check that a cache hit never gets here)."""
    env = dict(os.environ, LC_ALL="C")  # plain ASCII quotes in diagnostics
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)


def _explain_errors(hls: HLSModule, log: str, build_dir: Path, max_errors: int = 5) -> str:
    diag = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?:fatal )?error: (?P<msg>.*)$", re.M)
    out = []
    for m in list(diag.finditer(log))[:max_errors]:
        fname, line = Path(m.group("file")).name, int(m.group("line"))
        out.append(f"  {fname}:{line}:{m.group('col')}: error: {m.group('msg')}")
        path = build_dir / fname
        if path.is_file():
            text = path.read_text().splitlines()
            if 0 < line <= len(text):
                out.append(f"    {line:5d} | {text[line - 1].strip()}")
        if fname == "kernel.cpp":
            fn, loc = hls.locate(line)
            if fn is not None:
                out.append(f"    in C++ function '{fn.cpp_name}' (kernel '{fn.sym}' defined at {fn.source}"
                           + (f"; this line comes from {loc}" if loc and loc != fn.source else "") + ")")
    if not out:
        out = ["  " + x for x in log.strip().splitlines()[-15:]]
    return "\n".join(out)


# ---------------------------------------------------------------------------- verified cache
def _hash_file(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def verified_library(library: Path) -> bytes | None:
    """The library's bytes if they match the SHA-256 recorded when it was built, else None (missing,
    swapped, bit-flipped, truncated, or no hash recorded): the caller rebuilds."""
    try:
        recorded = _hash_file(library).read_text().strip()
        data = library.read_bytes()
    except OSError:
        return None
    return data if hashlib.sha256(data).hexdigest() == recorded else None


@contextlib.contextmanager
def _build_lock(directory: Path):
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".build.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load_private_copy(data: bytes, directory: Path, name: str) -> ctypes.CDLL:
    """dlopen the verified bytes from a private copy, unlinked at once. The cache file itself is never
    mapped: a file truncated or rewritten while mapped would crash the process (SIGBUS) or change
    code under it, and glibc would hand back a stale handle for a path it has loaded before."""
    fd, tmp = tempfile.mkstemp(prefix=f".load-{Path(name).stem}-", suffix=".so", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return ctypes.CDLL(tmp)
    finally:
        os.unlink(tmp)


class CSimModule:
    """A compiled C simulation of an HLS kernel: call it with numpy arrays (see the module docstring)."""

    def __init__(self, hls: HLSModule, cxx: str = "g++", cflags=(), cache_dir=None, check_sites=()):
        self.hls = hls
        self.check_sites = list(check_sites)
        self.name = hls.top
        self.inputs = [p for p in hls.ports if not p.is_output]
        self.outputs = [p for p in hls.ports if p.is_output]
        compiler = find_compiler(cxx)
        ap_dir = ap_types_dir()
        stack = max(MIN_STACK, 2 * hls.local_bytes + (1 << 20))
        wrapper = wrapper_source(hls, stack)
        self.flags = list(CXXFLAGS) + list(cflags)
        key = hashlib.sha256(json.dumps([hls.code, hls.header, hls.weights, wrapper, self.flags,
                                         compiler_version(compiler), str(ap_dir)]).encode()).hexdigest()[:24]
        self.key = key
        self.directory = Path(cache_dir) if cache_dir is not None else cache_root() / key
        # The key is in the file name: a process never dlopens two different libraries under one path
        # (glibc would hand back the first), and a stale build in a reused project directory never matches.
        self.library = self.directory / f"libkernel_{key[:16]}.so"
        t0 = time.perf_counter()
        self.cache_hit, data = True, verified_library(self.library)
        if data is None:
            # Builders of one key take turns: the second finds the first one's build and uses it.
            with _build_lock(self.directory):
                data = verified_library(self.library)
                if data is None:
                    self.cache_hit = False
                    self._build(compiler, ap_dir, wrapper)
                    data = verified_library(self.library)
                    if data is None:
                        raise AlloError(f"kernel '{self.name}': the library just built at {self.library} does not "
                                        "match its recorded hash; is another process writing into "
                                        f"{self.directory}?")
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.build_seconds = time.perf_counter() - t0
        self._lib = _load_private_copy(data, self.directory, self.library.name)
        self._fn = self._lib.allo_csim_batch
        self._fn.restype = ctypes.c_int
        self._trap = self._lib.allo_csim_trap
        self._trap.restype = ctypes.c_int
        self._trap.argtypes = [ctypes.POINTER(ctypes.c_longlong)]
        self._fn.argtypes = [ctypes.c_int64] + [
            t for p in hls.ports for t in ([ctypes.c_void_p, ctypes.c_int64] if p.is_array and not p.is_output
                                           else [ctypes.c_void_p] if p.is_array
                                           else [np.ctypeslib.as_ctypes_type(numpy_dtype(p))])]

    def library_bytes(self) -> bytes:
        """The built library, read again and checked against the hash it was loaded with (for copying
        it into a project: a library changed on disk since is refused, never copied)."""
        data = self.library.read_bytes() if self.library.is_file() else b""
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise AlloError(f"{self.library} changed on disk after it was loaded (hash mismatch); rebuild with "
                            "the same call (the cache repairs itself) and copy again")
        return data

    def _build(self, compiler: str, ap_dir: Path, wrapper: str):
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("build-*"):
            # Under the build lock, a build directory is a leftover of a process that was killed.
            shutil.rmtree(stale, ignore_errors=True)
        for bad in (self.library, _hash_file(self.library)):
            bad.unlink(missing_ok=True)  # a library that failed verification is never kept
        # Build in a private directory and move the results in atomically.
        tmp = Path(tempfile.mkdtemp(prefix="build-", dir=self.directory))
        try:
            self.hls.write(tmp)
            (tmp / WRAPPER).write_text(wrapper)
            cmd = [compiler, *self.flags, "-isystem", str(ap_dir), "-o", self.library.name, WRAPPER]
            r = _compile(cmd, tmp)
            (tmp / "build.log").write_text(" ".join(cmd) + "\n" + r.stdout + r.stderr)
            if r.returncode != 0:
                keep = self.directory / "failed"
                if keep.exists():
                    shutil.rmtree(keep, ignore_errors=True)
                os.replace(tmp, keep)
                raise CSimCompileError(
                    f"g++ failed to compile the HLS C++ of kernel '{self.hls.top}' (exit {r.returncode}):\n"
                    + _explain_errors(self.hls, r.stderr, keep)
                    + f"\nfull log: {keep / 'build.log'}; sources: {keep}")
            for old in self.directory.glob("libkernel_*.so*"):
                if not old.name.startswith(self.library.name):
                    old.unlink(missing_ok=True)  # builds of other code in a reused project directory
            for f in list(tmp.iterdir()):
                if f.name != self.library.name:
                    os.replace(f, self.directory / f.name)
            digest = hashlib.sha256((tmp / self.library.name).read_bytes()).hexdigest()
            os.replace(tmp / self.library.name, self.library)
            # The hash file is written last and atomically: it is what makes the library a valid build.
            atomic_write_text(_hash_file(self.library), digest + "\n")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def estimate(self, **kw):
        """Static latency/resource estimate of the schedule this simulation was built from."""
        return self.hls.estimate(**kw)

    # -- calling
    def _signature(self) -> str:
        return ", ".join(f"{p.name}: {p.ctype}{list(p.shape) if p.is_array else ''}" for p in self.inputs)

    def __call__(self, *args):
        if len(args) != len(self.inputs):
            raise CallError(f"kernel '{self.name}' takes {len(self.inputs)} argument(s) ({self._signature()}), "
                            f"got {len(args)}")
        # fixed point travels as float64 (see numpy_dtype): accept any real array for it
        args = [np.asarray(a, dtype=np.float64) if p.is_array and p.dtype is not None and p.dtype.is_fixed
                and np.asarray(a).dtype.kind in "fiu" else a for p, a in zip(self.inputs, args)]
        plan = BatchPlan(self.name, self.inputs, args)
        packed, keep = [], []
        for p, a, batched in zip(self.inputs, args, plan.batched):
            dt = numpy_dtype(p)
            if not p.is_array:
                packed.append(np.ctypeslib.as_ctypes_type(dt)(dt.type(a)))
                continue
            arr = np.ascontiguousarray(a)
            keep.append(arr)
            stride = int(np.prod(p.shape, dtype=np.int64)) if batched else 0
            packed += [arr.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(stride)]
        n = plan.batch
        specs = [(plan.output_shape(p), (p.dtype if p.dtype is not None else _dtype_of(p)).numpy) for p in self.outputs]

        def invoke(outs):
            rc = self._fn(n if n is not None else 1, *packed, *[o.ctypes.data_as(ctypes.c_void_p) for o in outs])
            if rc != 0:
                raise AlloError(f"kernel '{self.name}': could not start the simulation thread (pthread error {rc}); "
                                f"it asked for a stack of {max(MIN_STACK, 2 * self.hls.local_bytes)} bytes")
            state = (ctypes.c_longlong * 3)()
            if self._trap(state):
                raise trap_message(self.check_sites, *state)

        outs = run_poisoned(self.name, specs, invoke)
        res = [o[()] if p.scalar_result and n is None else o for p, o in zip(self.outputs, outs)]
        if not res:
            return None
        return res[0] if len(res) == 1 else tuple(res)


def _dtype_of(p: Port):
    from ...lang.types import from_numpy

    return from_numpy(numpy_dtype(p))


def build_csim(schedule, interface: str = "vitis", cxx: str = "g++", cflags=(), project=None,
               checks: bool = True) -> CSimModule:
    """Emit, compile (or reuse a cached build) and load. ``project``: build in this directory instead
    of the cache (it is rebuilt whenever the code or flags differ from the last build there).
    ``checks``: the simulated C++ carries the bounds and division checks of
    :mod:`allo_ext.passes.safety` (the HLS C++ of ``target="vhls"`` never does)."""
    if not checks:
        return CSimModule(build_vhls(schedule, interface=interface), cxx=cxx, cflags=cflags, cache_dir=project)
    with schedule.context:
        module = ir.Module.parse(schedule.module.operation.get_asm(enable_debug_info=True))
        sites = insert_runtime_checks(module)
        if not sites:  # nothing to check: the C++ is exactly target="vhls"'s
            return CSimModule(build_vhls(schedule, interface=interface), cxx=cxx, cflags=cflags, cache_dir=project)
        hls = emit_module(module, schedule.top, schedule.mb.py_functions, interface,
                          {k: v for k, v in schedule.mb.signatures.items() if k not in schedule.mb.py_functions})
    hls.schedule = schedule
    return CSimModule(hls, cxx=cxx, cflags=cflags, cache_dir=project, check_sites=sites)
