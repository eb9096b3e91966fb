"""Compression that feeds the compiler: hardware-aware HPO (Optuna), structured pruning
(torch-pruning), 1-bit QAT (BitJetFormer), Linformer/particle-ordering studies and
interpretability (attention maps, class-token embeddings).

Modules (import what you need; heavy dependencies load lazily):

- ``data``: jets for these tools (train/val/test, particle orderings, normalisation);
- ``hpo`` / ``hpo_report``: the multi-objective Optuna search and its outputs;
- ``hardware``: the compiler's static estimate (cycles, DSPs) of a model;
- ``prune``: Taylor-importance structured pruning with iterative fine-tuning;
- ``size`` / ``quantize``: the paper's model-size accounting and 1-bit QAT;
- ``ordering``: particle orderings and fixed Linformer projections;
- ``explain``: attention heat-maps and embedding PCA.
"""
