"""C++ vocabulary of the HLS emitter: types, literals, names, expression precedence and the few
runtime helpers whose semantics C++ lacks (NaN-propagating max/min, floor division).

MLIR integers are signless. Every SSA integer value is held in a *signed* C type of its width
(``int8_t`` ... ``int64_t``, ``ap_int<N>`` for odd widths); the ops that read their operands as
unsigned (``divui``, ``cmpi ult``, ``uitofp`` ...) cast to the unsigned type of the same width.
Arrays at kernel boundaries keep the declared Python type (``uint8_t``), and loads from them are
cast to the signless representation. Fixed-point values are the exception: they are ``ap_fixed<W,
W - frac, Q, O>`` everywhere (buffers, scalars, temporaries), so that C simulation computes with
Xilinx's ap_fixed library (see ``fixed_ops.py`` here).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from torch_mlir import ir

from ...lang.errors import AlloError
from ...lang.types import DType

# ---------------------------------------------------------------------------- precedence
# Larger binds tighter. Binary operands of lower precedence get parentheses.
PRIMARY, UNARY, MUL, ADD, SHIFT, REL, EQ, BAND, BXOR, BOR, LAND, LOR, COND = (
    100, 90, 80, 70, 65, 60, 55, 50, 45, 40, 35, 30, 20)
# g++ -Wparentheses warns about mixing these with other operators unparenthesised.
_PICKY = {SHIFT, REL, EQ, BAND, BXOR, BOR, LAND, LOR}


@dataclass(frozen=True)
class E:
    """A C++ expression, its precedence and, where known, its C type (``inner``: the operand of a cast)."""

    text: str
    prec: int = PRIMARY
    ctype: str | None = None
    inner: "E | None" = None

    def __str__(self) -> str:
        return self.text


def paren(e: E, min_prec: int) -> str:
    return e.text if e.prec >= min_prec else f"({e.text})"


def binary(a: E, op: str, b: E, prec: int) -> E:
    if prec in _PICKY:
        lhs = a.text if a.prec >= UNARY else f"({a.text})"
        rhs = b.text if b.prec >= UNARY else f"({b.text})"
    else:
        lhs, rhs = paren(a, prec), paren(b, prec + 1)
    return E(f"{lhs} {op} {rhs}", prec)


def unary(op: str, a: E) -> E:
    inner = a.text if a.prec > UNARY else f"({a.text})"
    return E(f"{op}{inner}", UNARY)


_INT_T = re.compile(r"(u?)int(8|16|32|64)_t")


def cast(ctype: str, a: E) -> E:
    """``(ctype)a``, folding what C++ makes redundant: a cast to the expression's own type, a cast
    back through a same-width signed/unsigned pair, and casts of integer literals."""
    if a.ctype == ctype:
        return a
    if a.inner is not None and a.inner.ctype == ctype and _width(ctype) is not None \
            and _width(ctype) == _width(a.ctype):
        return a.inner
    m = _INT_T.fullmatch(ctype)
    if m and re.fullmatch(r"-?\d+", a.text):
        w = int(m.group(2))
        v = int(a.text) & ((1 << w) - 1)
        if not m.group(1) and v >= 1 << (w - 1):
            v -= 1 << w
        return int_literal(v, w)
    return E(f"({ctype}){paren(a, UNARY + 1)}", UNARY, ctype=ctype, inner=a)


def _width(ctype: str | None) -> int | None:
    m = _INT_T.fullmatch(ctype or "")
    return int(m.group(2)) if m else None


def call(fn: str, *args: E) -> E:
    return E(f"{fn}({', '.join(a.text for a in args)})")


def select(c: E, a: E, b: E) -> E:
    return E(f"{paren(c, LOR)} ? {paren(a, LOR)} : {paren(b, COND)}", COND)


# ---------------------------------------------------------------------------- names
CPP_RESERVED = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t char32_t class
compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield decltype
default delete do double dynamic_cast else enum explicit export extern false float for friend goto if inline
int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
register reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch
template this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq main std NAN INFINITY HUGE_VAL HUGE_VALF assert errno
""".split())


# Global names of the C and POSIX libraries that <cmath>, <cstdlib>, <algorithm> and <pthread.h> declare
# (g++ defines _GNU_SOURCE): a kernel function of that name would clash, so it gets a trailing '_'.
LIBC_GLOBALS = set("""
abs div labs ldiv llabs lldiv rand srand random srandom malloc calloc realloc free exit abort atexit atoi atol atof
strtod strtol system getenv setenv qsort bsearch memcpy memset memmove memcmp strlen strcpy strcmp strcat index
rindex printf puts remove rename select poll read write open close time clock sleep signal kill wait pause alarm
nice link unlink pipe dup fork access truncate sync send recv bind listen accept connect socket shutdown exp exp2
expm1 log log2 log10 log1p sqrt cbrt pow sin cos tan asin acos atan atan2 sinh cosh tanh asinh acosh atanh erf erfc
gamma lgamma tgamma floor ceil round trunc rint nearbyint fabs fmod remainder fmax fmin fma frexp ldexp modf
hypot copysign nan j0 j1 jn y0 y1 yn significand drem scalb scalbn logb ilogb lround llround lrint llrint isnan
isinf finite signbit max min swap sort copy fill find count move reverse rotate transform merge unique partition
remainder clamp mean sum norm
""".split())


def sanitize_global(name: str) -> str:
    s = sanitize(name)
    return s + "_" if s in LIBC_GLOBALS else s


def sanitize(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name).lstrip("_") or "v"
    if s[0].isdigit():
        s = "v" + s
    if s in CPP_RESERVED or s.startswith("allo_"):
        s = s + "_"
    return s


def unique(base: str, taken: set) -> str:
    name, k = base, 1
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    return name


# ---------------------------------------------------------------------------- types
class Needs:
    """Which headers and helpers the emitted code uses (only those are written out)."""

    def __init__(self):
        self.headers: set[str] = set()
        self.helpers: set[str] = set()


def int_bits(t: ir.Type) -> int | None:
    if isinstance(t, ir.IntegerType) or str(t).startswith("i"):
        try:
            return ir.IntegerType(t).width
        except (ValueError, TypeError):
            return None
    return None


def scalar_ctype(t: ir.Type, needs: Needs, unsigned: bool = False) -> str:
    """The C type that holds an SSA value of MLIR type ``t`` (signed unless ``unsigned``)."""
    s = str(t)
    if s == "f32":
        return "float"
    if s == "f64":
        return "double"
    if s == "index":
        # index values are printed as int; unsigned predicates (cmpi ult, divui, ...) on them need the
        # unsigned view, or a negative index would compare as small.
        return "unsigned" if unsigned else "int"
    w = int_bits(t)
    if w is not None:
        if w == 1:
            return "bool"
        if w in (8, 16, 32, 64):
            return f"{'u' if unsigned else ''}int{w}_t"
        needs.headers.add("ap_int.h")
        return f"ap_{'u' if unsigned else ''}int<{w}>"
    raise AlloError(f"the HLS emitter has no C++ type for MLIR type '{s}' (supported: f32, f64, index, iN)")


def dtype_ctype(d: DType, needs: Needs) -> str:
    """The C element type of a kernel-level array of our type ``d`` (signedness and fixed point kept)."""
    if d.is_fixed:
        needs.headers.add("ap_fixed.h")
        return d.ap_type()
    if d.is_float:
        return "float" if d.bits == 32 else "double"
    if d.is_index:
        return "int"
    if d.bits == 1:
        return "bool"
    if d.bits in (8, 16, 32, 64):
        return f"{'' if d.signed else 'u'}int{d.bits}_t"
    needs.headers.add("ap_int.h")
    return f"ap_{'' if d.signed else 'u'}int<{d.bits}>"


def is_plain(ctype: str) -> bool:
    """A C type numpy shares the memory layout of (so the csim wrapper can pass pointers through)."""
    return ctype in ("float", "double", "bool", "int") or re.fullmatch(r"u?int(8|16|32|64)_t", ctype) is not None


# ---------------------------------------------------------------------------- literals
def float_literal(x: float, bits: int) -> E:
    if np.isnan(x):
        return E("NAN" if bits == 32 else "(double)NAN")
    if np.isinf(x):
        return E(("-" if x < 0 else "") + ("HUGE_VALF" if bits == 32 else "HUGE_VAL"), UNARY if x < 0 else PRIMARY)
    # numpy prints the shortest decimal that round-trips at the value's own precision.
    s = str(np.float32(x)) if bits == 32 else repr(float(x))
    if "e" not in s and "." not in s:
        s += ".0"
    if bits == 32:
        s += "f"
    return E(s, UNARY if s.startswith("-") else PRIMARY)


def int_literal(v: int, bits: int) -> E:
    if bits == 1:
        return E("true" if v else "false")
    if bits == 64 and not -(2 ** 31) <= v < 2 ** 31:
        s = f"{v}LL" if v != -(2 ** 63) else "INT64_MIN"
    elif bits == 32 and v == -(2 ** 31):
        s = "INT32_MIN"
    else:
        s = str(v)
    return E(s, UNARY if s.startswith("-") else PRIMARY)


# ---------------------------------------------------------------------------- helpers
HELPERS = {
    "trap": """\
// Bounds and division checks of the C simulation report here (defined in csim_main.cpp).
extern "C" void allo_ext_trap(long long site, long long a, long long b);""",
    "maximum": """\
// arith.maximumf: NaN wins and +0 > -0 (std::fmax would drop the NaN).
template <typename T> static inline T allo_maximum(T a, T b) {
  if (a != a || b != b) return a + b;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}""",
    "minimum": """\
// arith.minimumf: NaN wins and -0 < +0 (std::fmin would drop the NaN).
template <typename T> static inline T allo_minimum(T a, T b) {
  if (a != a || b != b) return a + b;
  if (a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}""",
    "floordiv": """\
// Division rounding toward minus infinity (C++ '/' truncates toward zero).
template <typename T> static inline T allo_floordiv(T a, T b) {
  T q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}""",
    "ceildiv": """\
// Division rounding toward plus infinity.
template <typename T> static inline T allo_ceildiv(T a, T b) {
  T q = a / b;
  return (a % b != 0 && ((a < 0) == (b < 0))) ? q + 1 : q;
}""",
    "floormod": """\
// Modulo with the sign of the divisor, as affine 'mod' defines it.
template <typename T> static inline T allo_mod(T a, T b) {
  T r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}""",
    "bitcast": """\
template <typename To, typename From> static inline To allo_bitcast(From x) {
  static_assert(sizeof(To) == sizeof(From), "bitcast between types of different sizes");
  To y;
  std::memcpy(&y, &x, sizeof(To));
  return y;
}""",
    "tree_sum": """\
// A balanced adder tree over v[0..N): level by level, v[i] += v[i + s] (ceil(log2 N) adds deep). Each
// sum is stored into T; the emitter uses it only where T's addition wraps (associative), so the
// result is the in-order sum's bit for bit.
template <typename T, int N> static inline T allo_tree_sum(T (&v)[N]) {
#pragma HLS inline
  for (int s = 1; s < N; s *= 2) {
#pragma HLS unroll
    for (int i = 0; i + s < N; i += 2 * s) {
#pragma HLS unroll
      v[i] = T(v[i] + v[i + s]);
    }
  }
  return v[0];
}""",
    "fixed_raw": """\
// A fixed-point constant from its raw bits (for constants wider than a double's mantissa).
template <typename T, int W> static inline T allo_fixed_raw(unsigned long long raw) {
  T x;
  x.range(W - 1, 0) = ap_uint<W>(raw);
  return x;
}""",
}
