"""Post-training quantisation helpers: ``calibrate(model, sample)`` picks per-tensor fixed-point types."""
from .calibrate import Calibration, calibrate

__all__ = ["Calibration", "calibrate"]
