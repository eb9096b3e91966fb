"""What every bench shares: machine facts, a Markdown table, and writing ``results/<name>.{json,md}``."""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict:
    """Enough to tell two runs apart: CPU, core count, load, library versions and the date."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        # Other jobs share these machines: a high load average explains noisy numbers.
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "torch_mlir": _version("torch-mlir"),
        "numpy": _version("numpy"),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def machine_line(info: dict) -> str:
    return (f"{info['cpu']}, {info['cores']} cores (1-min load {info['load_avg_1min']}), Python {info['python']}, "
            f"torch {info['torch']}, torch-mlir {info['torch_mlir']}, numpy {info['numpy']}, {info['date']}")


def markdown_table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A GitHub Markdown table; ``align`` holds one of ``l``/``r``/``c`` per column (default: all right)."""
    align = align or "r" * len(headers)
    if len(align) != len(headers) or any(len(r) != len(headers) for r in rows):
        raise ValueError(f"markdown_table: {len(headers)} headers, align {align!r} and rows of lengths "
                         f"{sorted({len(r) for r in rows})} must all match")
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_results(name: str, data: dict, markdown: str, results_dir: Path | None = None) -> tuple[Path, Path]:
    """Write ``<name>.json`` (``data``) and ``<name>.md`` (``markdown``); returns both paths."""
    out = Path(results_dir) if results_dir is not None else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    js, md = out / f"{name}.json", out / f"{name}.md"
    js.write_text(json.dumps(data, indent=2, default=str) + "\n")
    md.write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    return js, md


def bar_chart(name: str, title: str, labels: list[str], series: dict[str, list[float]], ylabel: str,
              log: bool = False, results_dir: Path | None = None) -> Path:
    """Grouped bars, one group per label and one bar per series, saved as ``<name>.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(results_dir) if results_dir is not None else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    n = max(len(series), 1)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(min(11.0, max(6.0, 0.9 * len(labels) * n + 2)), 4.5))
    for k, (who, values) in enumerate(series.items()):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(labels))]
        ax.bar(xs, values, width, label=who)
    ax.set_xticks(range(len(labels)), labels, rotation=25 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = out / f"{name}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
