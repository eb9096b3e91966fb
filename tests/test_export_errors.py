"""Models from_pytorch cannot compile are refused with one clear line naming the cause and the fix."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from allo_ext.frontend import from_pytorch
from allo_ext.frontend.errors import ModelExportError
from allo_ext.lang.errors import CallError
from allo_ext.models import JetFormer


class _DataDependentIf(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 5)

    def forward(self, x):
        if x.sum() > 0:
            return self.lin(x)
        return self.lin(x * 2.0)


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg and "def forward" not in msg, msg
    return msg


def test_data_dependent_if_is_one_line_naming_the_model_line(capfd):
    with pytest.raises(ModelExportError) as e:
        from_pytorch(_DataDependentIf().eval(), torch.randn(2, 3))
    msg = _one_line(e)
    assert "depends on the input values" in msg and "test_export_errors.py:20" in msg and "if x.sum() > 0" in msg
    assert "torch.where" in msg
    err = capfd.readouterr().err
    assert "def forward" not in err  # torch's partial graph is not printed (it used to be, twice)


def test_batchnorm_without_running_stats_is_named():
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False)).eval()
    with pytest.raises(ModelExportError) as e:
        from_pytorch(m, torch.randn(2, 3))
    msg = _one_line(e)
    assert "1 (BatchNorm1d) has track_running_stats=False" in msg and "eval mode" not in msg.split(":")[0]


def test_float64_model_is_named():
    with pytest.raises(ModelExportError, match=r"parameters bias, weight are float64.*model\.float\(\)"):
        from_pytorch(nn.Linear(3, 5).double().eval(), torch.randn(2, 3, dtype=torch.float64))


@pytest.mark.parametrize("bad", [-1, 0, 2.5, True])
def test_bad_batch_size(bad):
    with pytest.raises(CallError, match="batch_size must be a positive integer"):
        from_pytorch(nn.Linear(3, 5).eval(), torch.randn(2, 3), batch_size=bad)


def test_model_for_8_particles_compiled_for_5():
    m = JetFormer.tiny(n_particles=8, n_features=3).eval()
    with pytest.raises(ModelExportError, match=r"built and trained for 8 particles per jet, the example input has 5"):
        from_pytorch(m, torch.zeros(1, 5, 3))
