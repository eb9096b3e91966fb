"""Mutation run: apply deliberate bugs to a COPY of the code and check that a test fails on each.

Mutants cover the frontend rewrites (BatchNorm folding, the transpose-BN-transpose matcher, add/sub
alpha), the softmax/log_softmax/attention kernels, the estimator's costs, the HLS emitter's helpers
and loops, and the safety pass. Each mutant is one exact text replacement in one file (the run stops
if the text is not found once: a mutant must not silently apply to nothing); the tests listed with it
run on the mutated copy, and the mutant is killed when one of them fails. Writes
bench/results/mutate.{json,md} with the test that killed each mutant.

    python -m bench.mutate [--only NAME,...] [--keep]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import machine_info, machine_line, markdown_table, write_results

REPO = Path(__file__).resolve().parent.parent
GUARDS = "tests/test_mutation_guards.py"

# name -> (file, original text, mutated text, occurrence (0-based), tests to run)
MUTANTS: dict[str, tuple[str, str, str, int, list[str]]] = {
    # frontend rewrites
    "bn-fold: no epsilon": ("allo_ext/frontend/fusion.py", "astype(np.float64) + eps)", "astype(np.float64))", 0,
                            [GUARDS + "::test_batchnorm_with_tiny_running_variance"]),
    "bn-fold: epsilon fixed at 1e-5": ("allo_ext/frontend/fusion.py", "astype(np.float64) + eps)",
                                       "astype(np.float64) + 1e-5)", 0,
                                       [GUARDS + "::test_batchnorm_with_tiny_running_variance"]),
    "bn-fold: shift sign": ("allo_ext/frontend/fusion.py", "return scale, b - consts", "return scale, b + consts", 0,
                            [GUARDS + "::test_batchnorm_with_tiny_running_variance"]),
    "matcher: any transpose": ("allo_ext/frontend/fusion.py", "return dims == [1, 2]", "return True", 0,
                               [GUARDS + "::test_transpose_bn_transpose_matcher_needs_dims_1_2"]),
    "matcher: any rank": ("allo_ext/frontend/fusion.py", "if val is None or val.dim() != 3:", "if val is None:", 0,
                          [GUARDS + "::test_transpose_bn_transpose_matcher_needs_dims_1_2",
                           GUARDS + "::test_transpose_bn_transpose_matcher_needs_rank_3", "tests/test_frontend.py"]),
    "add: alpha ignored": ("allo_ext/frontend/lowerings.py", "    if alpha != 1:\n        b = _mul(ctx, node, b, alpha)\n"
                           "    return _binary(K.add", "    return _binary(K.add", 0,
                           [GUARDS + "::test_add_and_sub_honour_alpha"]),
    # kernels
    "softmax: running max starts at 0": ("allo_ext/kernels/nn/activation.py", "m: T = NEG_INF", "m: T = 0.0", 0,
                                         [GUARDS + "::test_softmax_of_very_negative_rows"]),
    "log_softmax: running max starts at 0": ("allo_ext/kernels/nn/activation.py", "m: T = NEG_INF", "m: T = 0.0", 1,
                                             [GUARDS + "::test_softmax_of_very_negative_rows"]),
    "log_softmax: max not subtracted": ("allo_ext/kernels/nn/activation.py", "] - m - lse", "] - lse", 0,
                                        [GUARDS + "::test_softmax_of_very_negative_rows"]),
    "softmax: sum skips the exp": ("allo_ext/kernels/nn/activation.py", "                total += e\n",
                                   "                total += 1.0\n", 0, [GUARDS + "::test_softmax_of_very_negative_rows"]),
    "attention: running max starts at 0": ("allo_ext/kernels/nn/attention.py", 'mx: T = float("-inf")', "mx: T = 0.0",
                                           0, [GUARDS + "::test_attention_softmax_of_very_negative_scores"]),
    # estimator costs
    "costs: float add latency 4 -> 3": ("allo_ext/passes/estimate/costs.py", "_F_ADD, _F_MUL = OpCost(4, 2, 220, 200)",
                                        "_F_ADD, _F_MUL = OpCost(3, 2, 220, 200)", 0, ["tests/test_estimate.py"]),
    "costs: int div free": ("allo_ext/passes/estimate/costs.py", "return OpCost(w + 4, 0, w * w // 2, w * 3)",
                            "return OpCost(0, 0, w * w // 2, w * 3)", 0, ["tests/test_estimate.py"]),
    "costs: 18-bit multiply on 0 DSPs": ("allo_ext/passes/estimate/costs.py", "return OpCost(1, 1, 10, 20)",
                                         "return OpCost(1, 0, 10, 20)", 0, ["tests/test_estimate.py"]),
    "costs: two memory ports -> one": ("allo_ext/passes/estimate/costs.py", "MEM_PORTS = 2", "MEM_PORTS = 1", 0,
                                       ["tests/test_estimate.py"]),
    # HLS emitter
    "emitter: loop bound <= ": ("allo_ext/backends/hls/function.py", "{iv_name} < {ub}; {inc}", "{iv_name} <= {ub}; {inc}",
                                0, ["tests/test_hls_emit.py", "tests/test_safety.py", GUARDS]),
    "emitter: floordiv truncates": ("allo_ext/backends/hls/cpp.py", "((a < 0) != (b < 0))) ? q - 1 : q", "false) ? q - 1 : q",
                                    0, ["tests/test_hls_emit.py", "tests/test_safety.py"]),
    "emitter: maximum drops NaN": ("allo_ext/backends/hls/cpp.py", "  if (a != a || b != b) return a + b;\n  if (a == b) "
                                   "return std::signbit(a) ? b : a;", "  if (a == b) return std::signbit(a) ? b : a;", 0,
                                   ["tests/test_hls_emit.py", "tests/test_safety.py", GUARDS]),
    # safety pass
    "safety: static bound off by one": ("allo_ext/passes/safety.py", "or (0 <= r.lo and r.hi < d) or d < 0",
                                        "or (0 <= r.lo and r.hi <= d) or d < 0", 0, ["tests/test_safety.py"]),
    "safety: negative index passes": ("allo_ext/passes/safety.py", "CmpIPredicate.sge, v, _const(idx, 0)",
                                      "CmpIPredicate.sge, v, _const(idx, -5)", 0, ["tests/test_safety.py"]),
    "safety: INT_MIN / -1 unchecked": ("allo_ext/passes/safety.py", "bad = arith.OrIOp(zero, arith.AndIOp(is_min, is_m1)"
                                       ".result).result", "bad = zero", 0, ["tests/test_safety.py"]),
}

IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".pytest_cache", ".hypothesis", "*.so",
                                "results")


def apply(root: Path, path: str, old: str, new: str, occurrence: int) -> None:
    f = root / path
    text = f.read_text()
    starts = [m.start() for m in re.finditer(re.escape(old), text)]
    if len(starts) <= occurrence:
        raise SystemExit(f"mutant text not found ({len(starts)} match(es), need #{occurrence}) in {path}: {old!r}")
    at = starts[occurrence]
    f.write_text(text[:at] + new + text[at + len(old):])


def run_tests(root: Path, tests: list[str], timeout: int) -> tuple[str, str, float]:
    """('killed', first failing test) or ('survived', '') or ('error', reason)."""
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1",
               ALLO_EXT_CACHE=str(root / "build" / "cache"))
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed", "timeout (the mutant hangs)", time.perf_counter() - t0
    dt = time.perf_counter() - t0
    failed = re.findall(r"^FAILED (\S+)", r.stdout, re.M) + re.findall(r"^ERROR (\S+)", r.stdout, re.M)
    if r.returncode == 0:
        return "survived", "", dt
    if r.returncode == 1 and failed:
        return "killed", failed[0], dt
    if r.returncode < 0:  # the mutant crashed the test process (e.g. SIGFPE): the suite fails, so it is caught
        test = re.findall(r"line \d+ in (test_\w+)", r.stdout + r.stderr)
        return "killed", f"{signal.Signals(-r.returncode).name} in {test[-1] if test else 'the test process'}", dt
    return "error", (r.stdout + r.stderr).strip().splitlines()[-1][:200], dt


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="comma-separated mutant names (default: all)")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    ap.add_argument("--results-name", default="mutate")
    args = ap.parse_args(argv)
    names = [n for n in MUTANTS if not args.only or n in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="allo-ext-mutants-") as tmp:
        for name in names:
            path, old, new, occ, tests = MUTANTS[name]
            root = Path(tmp) / "copy"
            if root.exists():
                shutil.rmtree(root)
            shutil.copytree(REPO, root, ignore=IGNORE)
            apply(root, path, old, new, occ)
            status, by, dt = run_tests(root, tests, args.timeout)
            rows.append({"mutant": name, "file": path, "status": status, "killed_by": by, "seconds": round(dt, 1),
                         "tests": tests})
            print(f"{status:9s} {name}: {by}", flush=True)
    info = machine_info()
    killed = sum(r["status"] == "killed" for r in rows)
    data = {"mutants": rows, "killed": killed, "total": len(rows), "machine": info}
    md = (f"# bench/mutate: deliberate bugs against the test suite\n\n{killed} of {len(rows)} mutants killed. Each "
          "mutant is one text replacement applied to a copy of the code; the listed tests run on the copy.\n\n"
          + markdown_table(["mutant", "file", "result", "killed by", "s"],
                           [[r["mutant"], f"`{r['file']}`", r["status"] if r["status"] != "survived" else "**survived**",
                             f"`{r['killed_by']}`" if r["killed_by"] else "", r["seconds"]] for r in rows], "lllll")
          + f"\n{machine_line(info)}\n")
    write_results(args.results_name, data, md)
    return data


if __name__ == "__main__":
    main()
