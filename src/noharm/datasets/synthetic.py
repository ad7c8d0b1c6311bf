"""A seeded synthetic cohort where personalization genuinely helps a small subgroup.

Two binary group attributes, ``age`` (young/old) and ``sex`` (female/male),
are thresholds of sums of observed features (so a model can infer the group
from X, as the conditional-bias model's attribute predictor must).  The label
depends on features ``x4..x7``; in the small ``old_female`` subgroup (about 12 %
of rows by default) the sign of that relationship is flipped, so a generic
model fitted mostly to the majority mispredicts it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .._validation import check_fraction, check_positive_int
from ..errors import ConfigError
from .cohort import Cohort


def make_synthetic(n_samples: int = 800, n_features: int = 10, *, p_old: float = 0.35,
                   p_female: float = 0.35, effect: float = 3.0, noise: float = 0.5,
                   random_state: int = 0) -> Cohort:
    """Generate the cohort.

    Parameters
    ----------
    n_samples : rows.
    n_features : features (at least 8).
    p_old, p_female : share of each attribute's minority level.
    effect : strength of the label signal (larger = more separable).
    noise : sd of the label noise added to the logit.
    random_state : seed.
    """
    check_positive_int(n_samples, name="n_samples", minimum=20)
    if n_features < 8:
        raise ConfigError(f"n_features must be >= 8, got {n_features}.")
    check_fraction(p_old, name="p_old")
    check_fraction(p_female, name="p_female")
    rng = np.random.default_rng(random_state)
    X = rng.normal(size=(n_samples, n_features))
    za = X[:, 0] + X[:, 1] + 0.1 * rng.normal(size=n_samples)
    zs = X[:, 2] + X[:, 3] + 0.1 * rng.normal(size=n_samples)
    old = za > np.quantile(za, 1 - p_old)
    female = zs > np.quantile(zs, 1 - p_female)
    signal = X[:, 4] + X[:, 5] - X[:, 6] + 0.5 * X[:, 7]
    flip = old & female
    logit = effect * np.where(flip, -signal, signal) + noise * rng.normal(size=n_samples)
    y = (logit > 0).astype(np.int64)
    cols = [f"x{i}" for i in range(n_features)]
    groups = pd.DataFrame({"age": np.where(old, "old", "young"),
                           "sex": np.where(female, "female", "male")})
    meta = {"name": "synthetic", "n_samples": n_samples, "random_state": random_state,
            "planted": "label relationship flipped in old_female"}
    return Cohort(X=pd.DataFrame(X.astype(np.float32), columns=cols),
                  y=pd.Series(y, name="target"), groups=groups, meta=meta)
