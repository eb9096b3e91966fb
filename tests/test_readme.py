"""The README's Python examples run as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    # Kernels are compiled from their source, so the examples must live in a real file.
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(blocks).replace("100_000", "1_000"))
    monkeypatch.chdir(tmp_path)
    code = compile(script.read_text(), str(script), "exec")
    exec(code, {"__name__": "readme_examples", "__file__": str(script)})  # noqa: S102
