"""The Python examples in README.md and docs/ run as written."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def _run(tmp_path, name: str, code: str) -> dict:
    # Kernels are compiled from their source, so the examples must live in a real file.
    script = tmp_path / f"{name}.py"
    script.write_text(code)
    ns = {"__name__": name, "__file__": str(script)}
    exec(compile(code, str(script), "exec"), ns)  # noqa: S102
    return ns


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = _blocks(ROOT / "README.md")
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    _run(tmp_path, "readme_examples", "\n".join(blocks).replace("100_000", "1_000"))


def test_kernel_guide_runs(tmp_path):
    from allo_ext.frontend.importer import LOWERINGS

    blocks = _blocks(ROOT / "docs" / "kernels.md")
    assert len(blocks) == 3
    prelude = ("import numpy as np\nimport allo_ext\nfrom allo_ext import float32\n"
               "from allo_ext.kernels import apply_schedules\nfrom hypothesis import given, strategies as st\n")
    before = set(LOWERINGS)
    try:
        ns = _run(tmp_path, "kernel_guide", prelude + "\n".join(blocks))
        ns["test_scale_add"]()  # the guide's property-based test, run for real
        assert "aten.my_op.default" in LOWERINGS
    finally:
        for k in set(LOWERINGS) - before:
            del LOWERINGS[k]
        from allo_ext.kernels import KERNELS

        KERNELS.pop("scale_add", None)
