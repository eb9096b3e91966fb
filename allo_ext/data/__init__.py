"""Jet data: the hls4ml LHC jet format (read, write, split, normalise) and a Pythia8 generator.

`from allo_ext.data.generate import generate` (also exported here as `generate_jets`; the name
`generate` is left to the submodule). The generator needs `pip install 'allo-ext[generate]'`.
"""
from .generate import GeneratorsMissingError
from .generate import generate as generate_jets
from .hls4ml_format import (
    CLASS_NAMES,
    DEFAULT_FEATURES,
    FEATURE_NAMES,
    JET_FEATURE_NAMES,
    N_PARTICLES,
    JetFiles,
    JetFormatError,
    iter_chunks,
    load,
    make_jets_array,
    write,
)
from .jet_features import constituent_features
from .normalise import Normaliser
from .split import Split, load_split, split_indices

__all__ = [
    "CLASS_NAMES", "DEFAULT_FEATURES", "FEATURE_NAMES", "JET_FEATURE_NAMES", "N_PARTICLES",
    "GeneratorsMissingError", "JetFiles", "JetFormatError", "Normaliser", "Split",
    "constituent_features", "generate_jets", "iter_chunks", "load", "load_split",
    "make_jets_array", "split_indices", "write",
]
