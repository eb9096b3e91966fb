"""Analyses and rewrites on our MLIR modules, shared by the schedule and the backends."""
