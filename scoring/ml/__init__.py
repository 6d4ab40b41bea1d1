"""Machine-learning core of the scoring service (pure numpy/scipy/scikit-learn, no Django).

Modules: ``features`` (inventory + vectorized aggregation), ``synthetic`` (deterministic test data),
``btyd`` (BG/NBD + Gamma-Gamma), ``models`` (training/prediction), ``explain`` (exact contributions),
``tiers`` (tiers, actions, routing), ``registry_io`` (skops artifacts with SHA-256), ``cdnow`` (benchmark).
"""
