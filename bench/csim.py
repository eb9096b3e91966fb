"""Benchmark: C simulation (``target="vitis_hls", mode="csim"``) against hls4ml 1.3.0 in the same run.

- Build time: export + C++ emission + g++ (a fresh build directory, so no cache hit), against
  hls4ml's ``convert_from_pytorch_model`` + ``compile()`` for the same MLP.
- Throughput in jets/s on a batch: our wrapper loops over the batch in C; hls4ml's ``predict()``
  loops per sample through ctypes.
- Models: the particle MLP (8 particles x 3 features -> 64 -> 32 -> 32 -> 5, ReLU, softmax) built
  as a plain ``nn.Sequential`` so hls4ml's tracer takes it, and ``JetFormer.tiny()`` (ours only:
  hls4ml 1.3.0 has no PyTorch converter for this attention).
- hls4ml runs in ``ap_fixed<16,6>`` (its default); ours in float32. Argmax agreement with torch is
  reported for both.
- If the estimator is available, the static estimate for ``JetFormer.tiny()`` at batch 1 under
  the default and latency schedules.

    python -m bench.csim [--quick]

Writes bench/results/csim.json and csim.md (``--quick``: csim-quick.*).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
from torch import nn

from .common import bar_chart, machine_info, machine_line, markdown_table, write_results


def particle_mlp(n=8, f=3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(n * f, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5), nn.Softmax(dim=-1)).eval()


def _median(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def ours(model, x, repeat) -> dict:
    from allo_ext.frontend import from_pytorch

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        f = from_pytorch(model, torch.from_numpy(x[:1]), target="vitis_hls", mode="csim", project=d)
        build = time.perf_counter() - t0
        y = f(x)
        t = _median(lambda: f(x), repeat)
    return {"build_s": build, "predict_s": t, "jets_per_s": len(x) / t, "y": y}


def hls4ml_run(model, x, repeat) -> dict:
    import hls4ml

    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        cfg = hls4ml.utils.config_from_pytorch_model(model, input_shape=tuple(x.shape[1:]),
                                                     default_precision="ap_fixed<16,6>", granularity="model")
        hm = hls4ml.converters.convert_from_pytorch_model(model, output_dir=d, hls_config=cfg, backend="Vivado")
        hm.compile()
        build = time.perf_counter() - t0
        y = hm.predict(x)
        t = _median(lambda: hm.predict(x), max(1, repeat // 2))
    return {"build_s": build, "predict_s": t, "jets_per_s": len(x) / t, "y": np.asarray(y)}


def estimates() -> dict | None:
    try:
        from allo_ext.frontend import trace
        from allo_ext.kernels import apply_schedules
        from allo_ext.models import JetFormer
        from allo_ext.passes.estimate import estimate
    except ImportError:
        return None
    out = {}
    for profile in ("default", "latency"):
        torch.manual_seed(0)
        s = trace(JetFormer.tiny().eval(), torch.randn(1, 8, 3), target="vhls")
        apply_schedules(s, profile)
        e = estimate(s)
        out[profile] = {"estimate": e.to_dict(), "table": e.table()}
    return out


def run(quick: bool) -> dict:
    from allo_ext.models import JetFormer

    n = 512 if quick else 5000
    repeat = 2 if quick else 5
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 8, 3)).astype(np.float32)
    rows = []
    mlp = particle_mlp()
    with torch.no_grad():
        ref = mlp(torch.from_numpy(x)).numpy()
    a = ours(mlp, x, repeat)
    h = hls4ml_run(mlp, x, repeat)
    for who, r in (("allo-ext csim (float32)", a), ("hls4ml 1.3.0 (ap_fixed<16,6>)", h)):
        rows.append({"model": "particle MLP", "tool": who, "build_s": r["build_s"], "jets_per_s": r["jets_per_s"],
                     "us_per_jet": 1e6 * r["predict_s"] / n,
                     "argmax_agree": float((r["y"].argmax(1) == ref.argmax(1)).mean()),
                     "max_abs_err": float(np.abs(r["y"] - ref).max())})
    torch.manual_seed(0)
    tiny = JetFormer.tiny().eval()
    with torch.no_grad():
        ref_t = tiny(torch.from_numpy(x)).numpy()
    t = ours(tiny, x, repeat)
    rows.append({"model": "JetFormer.tiny", "tool": "allo-ext csim (float32)", "build_s": t["build_s"],
                 "jets_per_s": t["jets_per_s"], "us_per_jet": 1e6 * t["predict_s"] / n,
                 "argmax_agree": float((t["y"].argmax(1) == ref_t.argmax(1)).mean()),
                 "max_abs_err": float(np.abs(t["y"] - ref_t).max())})
    ratios = {"build_time_ours_over_hls4ml": a["build_s"] / h["build_s"],
              "throughput_ours_over_hls4ml": a["jets_per_s"] / h["jets_per_s"]}
    return {"machine": machine_info(), "n_jets": n, "rows": rows, "ratios": ratios, "estimate": estimates()}


def to_markdown(data: dict) -> str:
    hdr = ["model", "tool", "build (s)", "jets/s", "us/jet", "argmax agree", "max abs err vs torch"]
    rows = [[r["model"], r["tool"], f"{r['build_s']:.2f}", f"{r['jets_per_s']:,.0f}", f"{r['us_per_jet']:.2f}",
             f"{r['argmax_agree']:.4f}", f"{r['max_abs_err']:.1e}"] for r in data["rows"]]
    r = data["ratios"]
    md = (f"# csim against hls4ml ({data['n_jets']} jets)\n\n{machine_line(data['machine'])}\n\n"
          + markdown_table(hdr, rows, "ll" + "r" * 5)
          + f"\nParticle MLP: build time ours/hls4ml = {r['build_time_ours_over_hls4ml']:.2f} (target <= 1), "
            f"throughput ours/hls4ml = {r['throughput_ours_over_hls4ml']:.1f}x (target >= 10x). Not the same "
            f"precision: ours simulates float32, hls4ml emulates ap_fixed<16,6>.\n")
    est = data.get("estimate")
    if est:
        for profile, e in est.items():
            md += f"\n## Static estimate, JetFormer.tiny at batch 1, schedule={profile!r}\n\n{e['table']}\n"
        md += ("\nFor comparison, the JetFormer paper's unpipelined Allo design took 4.767 ms per batch of 16 in "
               "hw_emu.\n")
    return md


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="512 jets, 2 repeats: a smoke run")
    args = ap.parse_args(argv)
    data = run(args.quick)
    md = to_markdown(data)
    name = "csim-quick" if args.quick else "csim"
    js, mdp = write_results(name, data, md)
    mlp = [r for r in data["rows"] if r["model"] == "particle MLP"]
    pngs = [bar_chart(name, "Particle MLP: C simulation throughput", [r["tool"] for r in mlp],
                      {"jets / s": [r["jets_per_s"] for r in mlp]}, "jets / s", log=True)]
    est = data.get("estimate")
    if est:
        # Where the cycles go: total cycles per kernel (cycles per call x calls), the 10 largest
        # under the default schedule, side by side with the latency schedule.
        per = {p: {k["name"]: k["cycles"] * k["calls"] for k in e["estimate"]["kernels"] if k["name"] != "forward"}
               for p, e in est.items()}
        top = sorted(per["default"], key=per["default"].get, reverse=True)[:10]
        pngs.append(bar_chart(f"{name}-estimate", "JetFormer.tiny, batch 1: estimated cycles per kernel (all calls)",
                              top, {p: [per[p].get(k, 0) for k in top] for p in per}, "cycles", log=True))
    print(md)
    print(f"wrote {js}, {mdp} and {', '.join(map(str, pngs))}")


if __name__ == "__main__":
    main()
