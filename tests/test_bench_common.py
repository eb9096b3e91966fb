"""bench.common: the Markdown table and the results files every bench writes."""
import json

import pytest

from bench.common import machine_info, machine_line, markdown_table, write_results


def test_markdown_table_exact_text():
    text = markdown_table(["kernel", "ms"], [["relu", 1.5], ["softmax", "-"]], align="lr")
    assert text == ("| kernel | ms |\n"
                    "|:---|---:|\n"
                    "| relu | 1.5 |\n"
                    "| softmax | - |\n")


def test_markdown_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match="must all match"):
        markdown_table(["a", "b"], [["only one"]])


def test_write_results_round_trips(tmp_path):
    info = machine_info()
    assert {"cpu", "cores", "torch", "date", "load_avg_1min"} <= set(info)
    assert info["torch"].startswith("2.13.0")
    js, md = write_results("demo", {"machine": info, "x": [1, 2]}, "# Demo", results_dir=tmp_path)
    assert (js.name, md.name) == ("demo.json", "demo.md")
    assert json.loads(js.read_text()) == {"machine": info, "x": [1, 2]}
    assert md.read_text() == "# Demo\n"
    assert info["cpu"] in machine_line(info)
