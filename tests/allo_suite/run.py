"""Run Allo's own test files (vendored in upstream/tests) against allo_ext and report.

    PYTHONPATH=$PWD python -m tests.allo_suite.run [FILE ...] [-j 2] [--docs]

Each file runs in its own pytest process with the ``allo`` shim (shim/allo -> allo_ext.compat)
and the Allo-syntax loader; every test function's outcome lands in a JSON file. Test functions
that need Vitis/XLS/Catapult or compare Allo's own C++/MLIR text are out of scope (decided from
their source, below) and counted separately. A failure is "unsupported" when it is one of our
errors naming the feature (an AlloError: unsupported construct, schedule primitive, type), and
"fail" otherwise (a wrong number, or a crash that is not one of our errors).

Writes results/last_run.json and, with --docs, docs/allo-compat.md (per-file counts and the
feature table, each feature supported / partly / not by the outcomes of the tests that use it).
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures as cf
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
UPSTREAM = os.path.join(HERE, "upstream", "tests")
RESULTS = os.path.join(HERE, "results", "last_run.json")
DOC = os.path.join(REPO, "docs", "allo-compat.md")
UPSTREAM_COMMIT = "a098603f1d767fd3472bf7ea6c565a3a8acd8639"

FILES = ["test_builder.py", "test_types.py", "test_bitop.py", "test_function_calls.py", "test_template.py",
         "test_linalg.py", "test_schedule_compose.py", "test_schedule_compute.py", "test_schedule_memory.py",
         "test_schedule_stream.py", "test_schedule_structure.py", "test_nn.py", "test_systolic_array.py",
         "test_stateful.py"]
# A representative subset for the default test run (tests/allo_suite/test_harness.py).
QUICK = ["test_template.py", "test_stateful.py", "test_schedule_structure.py"]

# Out of scope: other tools, or Allo's own generated text (C++ or MLIR) compared as strings.
_OUT_OF_SCOPE = [
    (re.compile(r"hls_code|\bxls\b|XLS|catapult|Catapult|tapa|ihls|vivado_hls|target=\"vitis_hls\"(?!.*is_available)"),
     "needs Vitis/XLS/Catapult or compares Allo's generated HLS C++ text"),
    (re.compile(r"assert[^\n]*\bin (str\()?(code|mod|s\.module|hls|str\(s|f\.read)"),
     "compares Allo's generated code text"),
    (re.compile(r"\.count\(\"|re\.(search|findall)\("), "compares Allo's generated code text"),
    (re.compile(r"assert\s+(not\s+)?f?('[^'\n]*'|\"[^\"\n]*\")\s+(not\s+)?in\s+"),
     "compares Allo's generated MLIR/C++ text"),
]

FEATURES = [
    ("generic kernels `def k[T, N](...)` + `instantiate=`", r"def \w+\[|instantiate="),
    ("in-kernel generic calls `k[T, N](...)`", r"\b\w+\[[\w\s,\"\.\*/+-]+\]\(\w"),
    ("`allo.grid` loops", r"allo\.grid\("),
    ("`allo.reduction` loops", r"allo\.reduction\("),
    ("`grid(..., pipeline=, unroll=)`", r"grid\([^)]*(pipeline|unroll)="),
    ("`while` loops", r"^\s+while\b"),
    ("scalar return values", r"->\s*\"?(u?int\d+|float\d+|bool|Ty|index)\"?\s*:"),
    ("`Int(N)`/`UInt(N)` of any width", r"\bU?Int\(\d+\)"),
    ("narrow ints (`int4`, `uint1`, ...)", r"\bu?int[124]\b"),
    ("`float16`/`bfloat16`", r"float16|bfloat16"),
    ("fixed point `Fixed`/`UFixed`", r"U?Fixed\("),
    ("`ConstExpr`", r"ConstExpr"),
    ("`Stateful`", r"Stateful"),
    ("bit access `x[i]`/`x[lo:hi]`", r"\w\[\d+\s*:\s*\d+\]|\w\[\w+\s*:\s*\w+\]\s*="),
    ("`.bitcast()`", r"\.bitcast\("),
    ("`allo.meta_for`/`meta_if`", r"meta_for|meta_if"),
    ("array builtins (`allo.matmul`, `allo.exp`, ...)",
     r"allo\.(matmul|bmm|add|sub|mul|div|exp|log|abs|sin|cos|tan|tanh|softmax|relu|linear|conv|maxpool|sumpool|"
     r"layernorm|gelu|transpose|view|concat|copy|tril|ones|power|sqrt)\("),
    ("`customize(verbose=)`", r"verbose="),
    ("`customize(enable_tensor=)`", r"enable_tensor"),
    ("`s.split`/`s.reorder`", r"\.split\(|\.reorder\("),
    ("`s.pipeline`/`s.unroll`", r"\.pipeline\(|\.unroll\("),
    ("`s.partition`", r"\.partition\("),
    ("`s.get_loops()` objects", r"get_loops"),
    ("`s.compose`", r"\.compose\("),
    ("`s.reuse_at`", r"reuse_at"),
    ("`s.buffer_at`", r"buffer_at"),
    ("`s.compute_at`", r"compute_at"),
    ("`s.fuse`", r"\.fuse\("),
    ("`s.reshape`", r"\.reshape\(s"),
    ("`s.to` (streams)", r"\.to\("),
    ("`s.unfold`", r"\.unfold\("),
    ("`s.parallel`", r"\.parallel\("),
    ("`s.dataflow`", r"\.dataflow\("),
    ("Allo's `allo.library.nn`", r"library\.nn|library import nn"),
    ("systolic arrays (`allo.library.systolic`)", r"systolic"),
    ("HLS C++ emission (`target=\"vhls\"`)", r"vhls"),
]


# What a status alone would hide. A feature listed in PARTLY is at most "partly" whatever its tests say.
NOTES = {
    "`s.reuse_at`": "checked and recorded; the CPU target computes the same numbers without the buffer; the HLS "
                    "backend refuses the schedule (line buffers are not generated)",
    "`s.buffer_at`": "as reuse_at: recorded hint, CPU exact, HLS refuses",
    "`s.compute_at`": "as reuse_at: recorded hint, CPU exact, HLS refuses",
    "`customize(enable_tensor=)`": "accepted: kernels always compile to memrefs (same results)",
    "fixed point `Fixed`/`UFixed`": "owned by the fixed-point work (Allo's Fixed(bits, frac) and ap_fixed arithmetic)",
    "HLS C++ emission (`target=\"vhls\"`)": "tests comparing Allo's own C++ text are out of scope",
    "`Int(N)`/`UInt(N)` of any width": "1 to 64 bits run; wider types compile but have no numpy array type",
    "`float16`/`bfloat16`": "bfloat16 arrays need ml_dtypes",
}
PARTLY = {"`s.reuse_at`", "`s.buffer_at`", "`s.compute_at`"}


def test_functions(path: str) -> dict[str, str]:
    """name -> source of every top-level ``test_*`` function of an upstream file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    from allo_ext.lang.source import rewrite_generics

    tree = ast.parse(rewrite_generics(text)[0])
    lines = text.splitlines()
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            out[node.name] = "\n".join(lines[start - 1:node.end_lineno])
    return out


def out_of_scope(src: str) -> str | None:
    for pat, why in _OUT_OF_SCOPE:
        if pat.search(src):
            return why
    return None


def classify(outcome: dict | None) -> str:
    if outcome is None:
        return "fail"
    if outcome["outcome"] in ("passed", "skipped"):
        return "pass" if outcome["outcome"] == "passed" else "skip"
    mod = outcome.get("exc_module") or ""
    if mod.startswith("allo_ext") or outcome.get("exc_type") in ("CompileExit", "UnsupportedFeature",
                                                                  "UnsupportedName", "ScheduleError"):
        return "unsupported"
    return "fail"


def run_file(name: str, timeout: int = 900) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "outcomes.json")
        env = dict(os.environ, ALLO_SUITE_RESULTS=out,
                   PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--assert=plain",
               "-o", "addopts=", "--rootdir", HERE, "-c", os.path.join(HERE, "harness.ini"),
               os.path.join(UPSTREAM, name)]
        t0 = time.time()
        try:
            proc = subprocess.run(cmd, env=env, cwd=HERE, capture_output=True, text=True, timeout=timeout)
            tail = (proc.stdout + proc.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            tail = f"timed out after {timeout} s"
        seconds = time.time() - t0
        raw = json.load(open(out)) if os.path.exists(out) else {}
    funcs = test_functions(os.path.join(UPSTREAM, name))
    tests = {}
    for fname, src in funcs.items():
        items = {k: v for k, v in raw.items() if k.split("::")[-1].split("[")[0] == fname}
        why = out_of_scope(src)
        if why:
            tests[fname] = {"status": "out-of-scope", "why": why}
            continue
        if not items:
            tests[fname] = {"status": "fail", "why": "no outcome recorded (collection error or crash): "
                                                      + tail[-300:].replace("\n", " | ")}
            continue
        statuses = [classify(v) for v in items.values()]
        worst = "fail" if "fail" in statuses else "unsupported" if "unsupported" in statuses else \
            "pass" if "pass" in statuses else "skip"
        first_bad = next((v for v in items.values() if classify(v) not in ("pass", "skip")), None)
        tests[fname] = {"status": worst, "why": None if first_bad is None else
                        f"{first_bad['exc_type']}: {first_bad['message']}"}
    return {"file": name, "seconds": round(seconds, 1), "tests": tests}


def summarize(results: list[dict]) -> dict:
    summary = {}
    for r in results:
        c = {"total": len(r["tests"])}
        for k in ("pass", "skip", "unsupported", "fail", "out-of-scope"):
            c[k] = sum(1 for t in r["tests"].values() if t["status"] == k)
        c["in_scope"] = c["total"] - c["out-of-scope"]
        summary[r["file"]] = c
    tot = {k: sum(c[k] for c in summary.values()) for k in next(iter(summary.values()))}
    summary["TOTAL"] = tot
    return summary


def feature_table(results: list[dict]) -> list[tuple[str, int, int, str]]:
    rows = []
    for label, pat in FEATURES:
        rx = re.compile(pat, re.M)
        n = ok = 0
        for r in results:
            srcs = test_functions(os.path.join(UPSTREAM, r["file"]))
            for fname, t in r["tests"].items():
                if t["status"] == "out-of-scope" or not rx.search(srcs.get(fname, "")):
                    continue
                n += 1
                ok += t["status"] in ("pass", "skip")
        status = "—" if n == 0 else "supported" if ok == n else "not" if ok == 0 else "partly"
        if label in PARTLY and status == "supported":
            status = "partly"
        rows.append((label, n, ok, status))
    return rows


def write_doc(results: list[dict], summary: dict, path: str = DOC):
    tot = summary["TOTAL"]
    pct = 100.0 * (tot["pass"] + tot["skip"]) / max(tot["in_scope"], 1)
    lines = [
        "# Allo compatibility",
        "",
        "Generated by `python -m tests.allo_suite.run --docs` from its last run: Allo's own test files",
        f"(cornell-zhang/allo at `{UPSTREAM_COMMIT[:12]}`, vendored under `tests/allo_suite/upstream/`,",
        "Apache-2.0) run unchanged against allo_ext through `allo_ext.compat` and the Allo-syntax loader",
        "(`allo_ext.lang.source`). Do not edit by hand.",
        "",
        f"**{tot['pass'] + tot['skip']} of {tot['in_scope']} in-scope test functions pass ({pct:.0f}%)**; "
        f"{tot['unsupported']} stop at a clear unsupported-feature error, {tot['fail']} fail otherwise; "
        f"{tot['out-of-scope']} are out of scope (Vitis/XLS/Catapult, or they compare Allo's own generated "
        "C++/MLIR text).",
        "",
        "Regenerate: `PYTHONPATH=$PWD python -m tests.allo_suite.run --docs` (about two minutes on two cores).",
        "`tests/allo_suite/test_harness.py` runs a subset in the default suite and every file in the `slow` test.",
        "",
        "| file | functions | out of scope | in scope | pass | unsupported | fail |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for f, c in summary.items():
        lines.append(f"| {f} | {c['total']} | {c['out-of-scope']} | {c['in_scope']} | {c['pass'] + c['skip']} | "
                     f"{c['unsupported']} | {c['fail']} |")
    lines += ["", "## Features", "",
              "A feature is *supported* when every in-scope test using it passes, *partly* when some do, *not* "
              "when none do (tests are matched to features by their source text).", "",
              "| feature | tests using it | passing | status | note |", "|---|---:|---:|---|---|"]
    for label, n, ok, status in feature_table(results):
        lines.append(f"| {label} | {n} | {ok} | {status} | {NOTES.get(label, '')} |")
    lines += ["", "## Why the others stop", "",
              "| file | test | status | first error |", "|---|---|---|---|"]
    for r in results:
        for fname, t in sorted(r["tests"].items()):
            if t["status"] in ("unsupported", "fail"):
                why = (t["why"] or "").replace("|", "\\|").replace(REPO + "/", "")[:160]
                lines.append(f"| {r['file']} | {fname} | {t['status']} | {why} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="upstream test files (default: all)")
    ap.add_argument("-j", type=int, default=2, help="files run in parallel (default 2)")
    ap.add_argument("--docs", action="store_true", help="also write docs/allo-compat.md")
    a = ap.parse_args(argv)
    files = a.files or FILES
    results = []
    with cf.ThreadPoolExecutor(a.j) as ex:
        futs = {ex.submit(run_file, f): f for f in files}
        for fut in cf.as_completed(futs):
            r = fut.result()
            c = summarize([r])[r["file"]]
            print(f"{r['file']:32s} {r['seconds']:6.1f}s  pass {c['pass'] + c['skip']:3d} / in-scope {c['in_scope']:3d}"
                  f"  unsupported {c['unsupported']:3d}  fail {c['fail']:3d}  out-of-scope {c['out-of-scope']:3d}",
                  flush=True)
            results.append(r)
    results.sort(key=lambda r: files.index(r["file"]))
    summary = summarize(results)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        json.dump({"commit": UPSTREAM_COMMIT, "summary": summary, "results": results}, f, indent=1)
    t = summary["TOTAL"]
    print(f"TOTAL pass {t['pass'] + t['skip']} / in-scope {t['in_scope']} "
          f"({100.0 * (t['pass'] + t['skip']) / max(t['in_scope'], 1):.0f}%), unsupported {t['unsupported']}, "
          f"fail {t['fail']}, out-of-scope {t['out-of-scope']}")
    if a.docs:
        write_doc(results, summary)
    return summary


if __name__ == "__main__":
    main()
