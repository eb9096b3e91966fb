"""target="vitis_hls" with mode csyn/sw_emu/hw_emu/hw: project generation, refusal without Vitis,
the csynth.xml parser (on a report sample written here by hand), and real runs where Vitis exists
(marked ``vitis``; skipped with the reason elsewhere)."""
import os
import shutil
import stat
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import allo_ext
from allo_ext import AlloError, ToolNotFoundError, float32, grid, int32
from allo_ext.backends.hls.report import parse_csynth_report
from allo_ext.backends.hls.vitis import DEFAULT_PART, VitisProject

W = np.array([[1.0, -2.0, 0.5], [0.25, 4.0, -1.0]], dtype=np.float32)
# The stand-in tools below run with a PATH holding only themselves: they call these by full path.
CP, MKDIR = shutil.which("cp"), shutil.which("mkdir")


def dense(X: float32[2, 3]) -> float32[2, 2]:
    Y: float32[2, 2]
    for i, j in grid(2, 2, name="mm"):
        acc: float32 = 0.0
        for k in range(3):
            acc += X[i, k] * W[j, k]
        Y[i, j] = max(acc, 0.0)
    return Y


def scaled(X: float32[4], s: int32) -> (float32[4], int32[1]):
    Z: float32[4]
    C: int32[1]
    C[0] = s * 2
    for i in range(4):
        Z[i] = X[i] * float32(s)
    return Z, C


def dense_torch(x):
    return F.relu(F.linear(torch.from_numpy(x), torch.from_numpy(W))).numpy()


@pytest.fixture
def no_vitis(monkeypatch, tmp_path):
    """A PATH with none of the Vitis tools and none of their environment variables."""
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    for var in ("XILINX_VITIS", "XILINX_XRT", "XDEVICE"):
        monkeypatch.delenv(var, raising=False)
    return empty


@pytest.mark.parametrize("mode", ["csyn", "sw_emu", "hw_emu", "hw"])
def test_project_has_every_file(tmp_path, mode):
    s = allo_ext.customize(dense)
    s.pipeline("mm.j")
    proj = s.build(target="vitis_hls", mode=mode, project=tmp_path / "p")
    assert isinstance(proj, VitisProject)
    for name in ("kernel.cpp", "kernel.h", "kernel_weights.h", "host.cpp", "Makefile", "run_hls.tcl"):
        assert (tmp_path / "p" / name).is_file(), name
        assert proj.files[name] == tmp_path / "p" / name
    assert (tmp_path / "p" / "data").is_dir()
    tcl = (tmp_path / "p" / "run_hls.tcl").read_text()
    for line in ("set_top dense", 'add_files kernel.cpp -cflags "-std=c++14"', "open_solution -reset solution1 "
                 "-flow_target vitis", f"set_part {{{DEFAULT_PART}}}", "create_clock -period 3.33 -name default",
                 "csynth_design"):
        assert line in tcl.splitlines()
    mk = (tmp_path / "p" / "Makefile").read_text()
    assert "\tv++ -c $(VPP_FLAGS) -k $(KERNEL) -I. -o $@ kernel.cpp" in mk
    assert "\tv++ -l $(VPP_FLAGS) -o $@ $<" in mk
    assert "--platform $(XDEVICE)" in mk and "KERNEL := dense" in mk
    host = (tmp_path / "p" / "host.cpp").read_text()
    for api in ("xrt::device device(0);", "device.load_xclbin(argv[1])", 'xrt::kernel krnl(device, uuid, "dense");',
                "xrt::bo bo_X(device, 6 * sizeof(float), krnl.group_id(0));",
                "xrt::bo bo_Y(device, 4 * sizeof(float), krnl.group_id(1));", "bo_X.sync(XCL_BO_SYNC_BO_TO_DEVICE);",
                "xrt::run run = krnl(bo_X, bo_Y);", "bo_Y.sync(XCL_BO_SYNC_BO_FROM_DEVICE);"):
        assert api in host, api


def per_jet(X: float32[1, 3, 2], W: float32[2]) -> float32[1, 2]:
    Y: float32[1, 2]
    for j in range(2):
        acc: float32 = 0.0
        for p in range(3):
            acc += X[0, p, j] * W[j]
        Y[0, j] = acc
    return Y


def test_a_batch_one_kernel_gets_batched_data_and_shared_weights(tmp_path):
    x = np.random.default_rng(3).standard_normal((5, 3, 2)).astype(np.float32)  # B in place of the leading 1
    w = np.array([2.0, -1.0], np.float32)  # the kernel's own shape: one item for the whole batch
    proj = allo_ext.customize(per_jet).build(target="vitis_hls", mode="hw", project=tmp_path / "p", inputs=[x, w])
    assert np.fromfile(tmp_path / "p" / "data" / "W.bin", dtype=np.float32).tolist() == [2.0, -1.0]
    ref = np.fromfile(tmp_path / "p" / "data" / "Y.ref.bin", dtype=np.float32).reshape(5, 2)
    np.testing.assert_allclose(ref, x.sum(1) * w, rtol=1e-6, atol=1e-6)
    host = proj.files["host.cpp"].read_text()
    assert "bo_W.write(d_W.data() + (n_W == 1 ? 0 : b) * 2);" in host


def test_inputs_and_reference_outputs_are_written_raw(tmp_path):
    x = np.random.default_rng(0).standard_normal((3, 2, 3)).astype(np.float32)  # a batch of 3
    proj = allo_ext.customize(dense).build(target="vitis_hls", mode="sw_emu", project=tmp_path / "p", inputs=[x])
    np.testing.assert_array_equal(np.fromfile(tmp_path / "p" / "data" / "X.bin", dtype=np.float32), x.reshape(-1))
    ref = np.fromfile(tmp_path / "p" / "data" / "Y.ref.bin", dtype=np.float32).reshape(3, 2, 2)
    np.testing.assert_allclose(ref, dense_torch(x), rtol=1e-6, atol=1e-6)
    assert proj.inputs[0].name == "X" and proj.outputs[0].name == "Y"


@pytest.mark.parametrize("mode, tools, env", [
    ("csyn", ["vitis_hls"], []),
    ("sw_emu", ["v++", "emconfigutil", "make", "g++"], ["XILINX_XRT", "XDEVICE"]),
    ("hw_emu", ["v++", "emconfigutil"], ["XILINX_XRT", "XDEVICE"]),
    ("hw", ["v++"], ["XILINX_XRT", "XDEVICE"]),
])
def test_running_without_vitis_refuses_naming_tool_and_variable(tmp_path, no_vitis, mode, tools, env):
    proj = allo_ext.customize(dense).build(target="vitis_hls", mode=mode, project=tmp_path / "p")
    with pytest.raises(ToolNotFoundError) as e:
        proj() if mode == "csyn" else proj(np.zeros((2, 3), np.float32))
    msg = str(e.value)
    for t in tools:
        assert f"'{t}' is not on PATH" in msg
    for v in env:
        assert f"environment variable {v} is not set" in msg
    assert "XILINX_VITIS is not set" in msg
    if mode in ("hw", "csyn"):
        assert "emconfigutil" not in msg  # only emulation needs it
    assert "The project files are written" in msg


def _fake_tool(bin_dir, name, script):
    p = bin_dir / name
    p.write_text("#!/bin/sh\n" + script)
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def test_only_the_missing_pieces_are_named(tmp_path, no_vitis, monkeypatch):
    for t in ("v++", "emconfigutil", "make", "g++"):
        _fake_tool(no_vitis, t, "exit 0\n")
    monkeypatch.setenv("XILINX_XRT", "/opt/xilinx/xrt")
    proj = allo_ext.customize(dense).build(target="vitis_hls", mode="sw_emu", project=tmp_path / "p")
    with pytest.raises(ToolNotFoundError) as e:
        proj(np.zeros((2, 3), np.float32))
    assert str(e.value).startswith("Vitis mode 'sw_emu' cannot run here: environment variable XDEVICE is not set")
    assert "PATH" not in str(e.value) and "XILINX_XRT" not in str(e.value)


CSYNTH_SAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<profile>
  <ReportVersion><Version>2023.2</Version></ReportVersion>
  <UserAssignments>
    <unit>ns</unit>
    <ProductFamily>virtexuplus</ProductFamily>
    <Part>xcu250-figd2104-2L-e</Part>
    <TopModelName>dense</TopModelName>
    <TargetClockPeriod>3.33</TargetClockPeriod>
    <ClockUncertainty>0.90</ClockUncertainty>
    <FlowTarget>vitis</FlowTarget>
  </UserAssignments>
  <PerformanceEstimates>
    <PipelineType>no</PipelineType>
    <SummaryOfTimingAnalysis><unit>ns</unit><EstimatedClockPeriod>2.431</EstimatedClockPeriod></SummaryOfTimingAnalysis>
    <SummaryOfOverallLatency>
      <unit>clock cycles</unit>
      <Best-caseLatency>57</Best-caseLatency>
      <Average-caseLatency>61</Average-caseLatency>
      <Worst-caseLatency>66</Worst-caseLatency>
      <Best-caseRealTimeLatency>0.190 us</Best-caseRealTimeLatency>
      <Average-caseRealTimeLatency>0.203 us</Average-caseRealTimeLatency>
      <Worst-caseRealTimeLatency>0.220 us</Worst-caseRealTimeLatency>
      <Interval-min>58</Interval-min>
      <Interval-max>67</Interval-max>
    </SummaryOfOverallLatency>
    <SummaryOfLoopLatency>
      <mm_i>
        <TripCount>2</TripCount>
        <Latency>40</Latency>
        <AbsoluteTimeLatency>0.133 us</AbsoluteTimeLatency>
        <IterationLatency>20</IterationLatency>
        <mm_j>
          <TripCount>2</TripCount>
          <Latency>12</Latency>
          <AbsoluteTimeLatency>39.96 ns</AbsoluteTimeLatency>
          <PipelineII>1</PipelineII>
          <PipelineDepth>11</PipelineDepth>
        </mm_j>
      </mm_i>
      <mm_j_inner>
        <TripCount><range><min>1</min><max>2</max></range></TripCount>
        <Latency>undef</Latency>
        <AbsoluteTimeLatency>undef</AbsoluteTimeLatency>
        <PipelineII>2</PipelineII>
        <PipelineDepth>-</PipelineDepth>
      </mm_j_inner>
    </SummaryOfLoopLatency>
  </PerformanceEstimates>
  <AreaEstimates>
    <Resources><BRAM_18K>2</BRAM_18K><DSP>5</DSP><FF>1021</FF><LUT>1733</LUT><URAM>0</URAM></Resources>
    <AvailableResources><BRAM_18K>5376</BRAM_18K><DSP>12288</DSP><FF>3456000</FF><LUT>1728000</LUT><URAM>1280</URAM>
    </AvailableResources>
  </AreaEstimates>
</profile>
"""


def test_csynth_report_parser(tmp_path):
    p = tmp_path / "csynth.xml"
    p.write_text(CSYNTH_SAMPLE)
    r = parse_csynth_report(p)
    assert r["top"] == "dense" and r["part"] == "xcu250-figd2104-2L-e" and r["version"] == "2023.2"
    assert r["target_clock_ns"] == 3.33 and r["estimated_clock_ns"] == 2.431
    assert (r["latency_best"], r["latency_average"], r["latency_worst"]) == (57, 61, 66)
    assert (r["interval_min"], r["interval_max"], r["ii"]) == (58, 67, 58)
    assert r["resources"] == {"BRAM_18K": 2, "DSP": 5, "FF": 1021, "LUT": 1733, "URAM": 0}
    assert r["available"]["LUT"] == 1728000 and r["available"]["DSP"] == 12288
    outer = r["loops"]["mm_i"]
    assert (outer["trip_count"], outer["latency"], outer["iteration_latency"]) == (2, 40, 20)
    assert outer["pipeline_ii"] is None
    assert outer["loops"]["mm_j"] == {"trip_count": 2, "latency": 12, "iteration_latency": None, "pipeline_ii": 1,
                                      "pipeline_depth": 11}
    inner = r["loops"]["mm_j_inner"]
    assert inner["trip_count"] == {"min": 1, "max": 2}
    assert inner["latency"] is None and inner["pipeline_depth"] is None and inner["pipeline_ii"] == 2


def test_csynth_report_errors_name_the_file(tmp_path):
    with pytest.raises(AlloError, match="cannot read the Vitis HLS synthesis report .*missing.xml"):
        parse_csynth_report(tmp_path / "missing.xml")
    (tmp_path / "other.xml").write_text("<profile><AreaEstimates/></profile>")
    with pytest.raises(AlloError, match="no PerformanceEstimates"):
        parse_csynth_report(tmp_path / "other.xml")


def test_csyn_run_reads_the_report_the_tool_writes(tmp_path, no_vitis):
    """A stand-in vitis_hls that writes the report where Vitis puts it: checks the run plumbing."""
    sample = tmp_path / "sample.xml"
    sample.write_text(CSYNTH_SAMPLE)
    _fake_tool(no_vitis, "vitis_hls", f'[ "$1" = "-f" ] && [ -f "$2" ] || exit 3\n'
                                      f"{MKDIR} -p dense.prj/solution1/syn/report\n"
                                      f"{CP} {sample} dense.prj/solution1/syn/report/csynth.xml\n")
    proj = allo_ext.customize(dense).build(target="vitis_hls", mode="csyn", project=tmp_path / "p")
    rep = proj()
    assert rep["latency_worst"] == 66 and rep["resources"]["DSP"] == 5 and proj.report is rep
    _fake_tool(no_vitis, "vitis_hls", "echo 'ERROR: [HLS 207-3776] something broke'\nexit 1\n")
    with pytest.raises(AlloError, match=r"vitis_hls -f run_hls.tcl' failed .*\n.*something broke"):
        proj()


def test_emulation_run_returns_the_outputs_the_host_writes(tmp_path, no_vitis, monkeypatch):
    """Stand-in tools: 'make run' copies the reference outputs to where the host writes its outputs."""
    for t in ("v++", "emconfigutil", "g++"):
        _fake_tool(no_vitis, t, "exit 0\n")
    _fake_tool(no_vitis, "make", '[ "$1" = run ] && [ "$2" = TARGET=hw_emu ] || exit 3\n'
                                 f"{CP} data/Y.ref.bin data/Y.out.bin\n")
    monkeypatch.setenv("XILINX_XRT", "/opt/xilinx/xrt")
    monkeypatch.setenv("XDEVICE", "xilinx_u250_gen3x16_xdma_4_1_202210_1")
    x = np.random.default_rng(1).standard_normal((4, 2, 3)).astype(np.float32)
    proj = allo_ext.customize(dense).build(target="vitis_hls", mode="hw_emu", project=tmp_path / "p", inputs=[x])
    y = proj(x)
    assert y.shape == (4, 2, 2)
    np.testing.assert_allclose(y, dense_torch(x), rtol=1e-6, atol=1e-6)


def test_ip_interface_is_only_for_csyn(tmp_path):
    s = allo_ext.customize(dense)
    proj = s.build(target="vitis_hls", mode="csyn", project=tmp_path / "ip", interface="ip")
    assert "-flow_target vivado" in proj.files["run_hls.tcl"].read_text()
    with pytest.raises(AlloError, match="needs interface='vitis'"):
        s.build(target="vitis_hls", mode="sw_emu", project=tmp_path / "p2", interface="ip")
    with pytest.raises(AlloError, match="unknown vitis_hls mode 'cosim'"):
        s.build(target="vitis_hls", mode="cosim")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_dry_run(tmp_path):
    allo_ext.customize(dense).build(target="vitis_hls", mode="hw", project=tmp_path / "p")
    env = dict(os.environ, XDEVICE="xilinx_u250_gen3x16_xdma_4_1_202210_1", XILINX_XRT="/opt/xilinx/xrt")
    r = subprocess.run(["make", "-n", "run", "TARGET=hw"], cwd=tmp_path / "p", env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cmds = r.stdout.splitlines()
    assert ("v++ -c -t hw --platform xilinx_u250_gen3x16_xdma_4_1_202210_1 --save-temps --temp_dir build_hw/tmp "
            "-k dense -I. -o build_hw/dense.xo kernel.cpp") in cmds
    assert "./host build_hw/dense.xclbin data" in cmds
    assert not any("emconfigutil" in c for c in cmds)  # hardware runs need no emulation config
    env.pop("XDEVICE")
    r = subprocess.run(["make", "-n", "run"], cwd=tmp_path / "p", env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "XDEVICE is not set" in r.stderr


XRT_STUBS = {
    "xrt_device.h": """#pragma once
#include <string>
namespace xrt {
struct uuid {};
class device {
 public:
  explicit device(unsigned int) {}
  uuid load_xclbin(const std::string &) { return {}; }
};
}  // namespace xrt
""",
    "xrt_bo.h": """#pragma once
#include <cstddef>
#include "xrt_device.h"
enum xclBOSyncDirection { XCL_BO_SYNC_BO_TO_DEVICE, XCL_BO_SYNC_BO_FROM_DEVICE };
namespace xrt {
using memory_group = unsigned int;
class bo {
 public:
  bo(const device &, size_t, memory_group) {}
  void write(const void *) {}
  void read(void *) {}
  void sync(xclBOSyncDirection) {}
};
}  // namespace xrt
""",
    "xrt_kernel.h": """#pragma once
#include <string>
#include "xrt_device.h"
namespace xrt {
class run {
 public:
  int wait() { return 0; }
};
class kernel {
 public:
  kernel(const device &, const uuid &, const std::string &) {}
  int group_id(int) const { return 0; }
  template <typename... Args> run operator()(Args &&...) { return {}; }
};
}  // namespace xrt
""",
}


@pytest.mark.csim
@pytest.mark.parametrize("kernel", [dense, scaled, per_jet])
def test_host_program_compiles_against_the_xrt_api(tmp_path, kernel):
    """Syntax only, against declarations of the XRT calls the host uses (XRT itself is not installed here)."""
    from allo_ext.backends.hls.csim import find_compiler

    inc = tmp_path / "inc" / "xrt"
    inc.mkdir(parents=True)
    for name, text in XRT_STUBS.items():
        (inc / name).write_text(text)
    proj = allo_ext.customize(kernel).build(target="vitis_hls", mode="sw_emu", project=tmp_path / "p")
    r = subprocess.run([find_compiler(), "-fsyntax-only", "-std=c++17", "-Wall", "-Wextra", "-Werror",
                        "-I", str(tmp_path / "inc"), str(proj.files["host.cpp"])], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if kernel is scaled:
        host = proj.files["host.cpp"].read_text()
        assert "xrt::run run = krnl(bo_X, d_s[0], bo_Z, bo_C);" in host
        assert 'failed += compare(dir + "/C.ref.bin", d_C, 0, "C");' in host


# ---------------------------------------------------------------------- real Vitis runs
def _missing(mode):
    from allo_ext.backends.hls.vitis import check_tools

    try:
        check_tools(mode)
    except ToolNotFoundError as e:
        return str(e)
    return None


@pytest.mark.vitis
def test_vitis_csynth_reports_latency_and_resources(tmp_path):
    why = _missing("csyn")
    if why:
        pytest.skip(why)
    s = allo_ext.customize(dense)
    s.pipeline("mm.j")
    rep = s.build(target="vitis_hls", mode="csyn", project=tmp_path / "p")()
    assert rep["latency_worst"] is not None and rep["latency_worst"] > 0
    assert set(rep["resources"]) >= {"BRAM_18K", "DSP", "FF", "LUT"}


@pytest.mark.vitis
def test_vitis_sw_emu_matches_torch(tmp_path):
    why = _missing("sw_emu")
    if why:
        pytest.skip(why)
    x = np.random.default_rng(2).standard_normal((2, 2, 3)).astype(np.float32)
    proj = allo_ext.customize(dense).build(target="vitis_hls", mode="sw_emu", project=tmp_path / "p", inputs=[x])
    np.testing.assert_allclose(proj(x), dense_torch(x), rtol=1e-5, atol=1e-5)
