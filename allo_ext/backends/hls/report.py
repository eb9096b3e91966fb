"""Read Vitis HLS's C-synthesis report (``<solution>/syn/report/csynth.xml``) into a dict.

The report's layout (``profile`` root): ``UserAssignments`` (part, top, target clock),
``PerformanceEstimates`` (``SummaryOfTimingAnalysis``, ``SummaryOfOverallLatency`` with best /
average / worst latency in cycles and the interval, ``SummaryOfLoopLatency`` with one element per
loop label, nested for nested loops) and ``AreaEstimates`` (``Resources`` and
``AvailableResources``: BRAM_18K, DSP, FF, LUT, URAM). Numbers the tool could not determine
are written ``undef`` (or ``-``); they become ``None``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ...lang.errors import AlloError

_LOOP_FIELDS = {"TripCount": "trip_count", "Latency": "latency", "IterationLatency": "iteration_latency",
                "PipelineII": "pipeline_ii", "PipelineDepth": "pipeline_depth"}


def _num(text):
    if text is None:
        return None
    t = text.strip()
    if t in ("", "undef", "-", "?", "N/A"):
        return None
    try:
        return int(t)
    except ValueError:
        try:
            return float(t)
        except ValueError:
            return t


def _value(el):
    """A number, or {min, max} for the ``<range><min/><max/></range>`` form some versions write."""
    if el is None:
        return None
    rng = el.find("range")
    if rng is not None:
        return {"min": _num(rng.findtext("min")), "max": _num(rng.findtext("max"))}
    return _num(el.text)


def _loops(elements) -> dict:
    """Loop label -> its numbers; a nested loop is a child element that has its own TripCount."""
    out = {}
    for loop in elements:
        entry = {key: _value(loop.find(tag)) for tag, key in _LOOP_FIELDS.items()}
        inner = [c for c in loop if c.find("TripCount") is not None]
        if inner:
            entry["loops"] = _loops(inner)
        out[loop.tag] = entry
    return out


def parse_csynth_report(path) -> dict:
    """Latency (cycles), interval (II of the top function), clock and resources from a csynth.xml."""
    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except (OSError, ET.ParseError) as e:
        raise AlloError(f"cannot read the Vitis HLS synthesis report {p}: {e}") from e
    ua = root.find("UserAssignments")
    perf = root.find("PerformanceEstimates")
    if perf is None:
        raise AlloError(f"{p} has no PerformanceEstimates section: is it a csynth.xml written by csynth_design?")
    lat = perf.find("SummaryOfOverallLatency")
    area = root.find("AreaEstimates")
    loops_el = perf.find("SummaryOfLoopLatency")

    def res(tag):
        el = area.find(tag) if area is not None else None
        return {c.tag: _num(c.text) for c in el} if el is not None else {}

    def lat_of(tag):
        return _num(lat.findtext(tag)) if lat is not None else None

    out = {
        "top": ua.findtext("TopModelName") if ua is not None else None,
        "part": ua.findtext("Part") if ua is not None else None,
        "version": root.findtext("ReportVersion/Version"),
        "target_clock_ns": _num(ua.findtext("TargetClockPeriod")) if ua is not None else None,
        "estimated_clock_ns": _num(perf.findtext("SummaryOfTimingAnalysis/EstimatedClockPeriod")),
        "latency_best": lat_of("Best-caseLatency"),
        "latency_average": lat_of("Average-caseLatency"),
        "latency_worst": lat_of("Worst-caseLatency"),
        "interval_min": lat_of("Interval-min"),
        "interval_max": lat_of("Interval-max"),
        "pipeline_type": perf.findtext("PipelineType"),
        "resources": res("Resources"),
        "available": res("AvailableResources"),
        "loops": _loops(list(loops_el) if loops_el is not None else []),
    }
    out["ii"] = out["interval_min"]
    return out
