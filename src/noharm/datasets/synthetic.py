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


def make_null_cohort(n_patients: int = 400, n_features: int = 6, *, rows_per_patient: int = 1,
                     n_sites: int = 3, random_state: int = 0) -> Cohort:
    """A cohort where the group attributes carry no signal: for checking that the guard
    certifies nothing (its null calibration).

    ``y`` depends on X only (a logistic model with label noise); ``site`` (``n_sites``
    levels) and ``sex`` (2 levels) are drawn at random per patient, independent of X and
    y, so no subgroup can truly gain from its attribute.  With ``rows_per_patient > 1``
    each patient has that many rows (its features vary around a patient mean, its
    outcome is shared) and ``split_by`` holds the patient id.
    """
    check_positive_int(n_patients, name="n_patients", minimum=20)
    check_positive_int(rows_per_patient, name="rows_per_patient")
    check_positive_int(n_sites, name="n_sites", minimum=2)
    if n_features < 2:
        raise ConfigError(f"n_features must be >= 2, got {n_features}.")
    rng = np.random.default_rng(random_state)
    base = rng.normal(size=(n_patients, n_features))
    w = np.linspace(1.0, -0.5, n_features)
    y_p = (base @ w + rng.normal(size=n_patients) > 0).astype(np.int64)
    site = rng.integers(0, n_sites, n_patients)
    sex = rng.integers(0, 2, n_patients)
    pid = np.repeat(np.arange(n_patients), rows_per_patient)
    X = base[pid] + (0.3 * rng.normal(size=(len(pid), n_features))
                     if rows_per_patient > 1 else 0.0)
    groups = pd.DataFrame({"site": np.array([f"s{k}" for k in range(n_sites)])[site[pid]],
                           "sex": np.where(sex[pid] == 1, "female", "male")})
    meta = {"name": "null", "n_patients": n_patients, "random_state": random_state,
            "planted": "nothing: the group attributes are noise"}
    return Cohort(X=pd.DataFrame(X.astype(np.float32),
                                 columns=[f"x{i}" for i in range(n_features)]),
                  y=pd.Series(y_p[pid], name="target"), groups=groups, meta=meta,
                  split_by=(pd.Series(pid, name="patient") if rows_per_patient > 1 else None))


def make_interaction_cohort(n: int = 4000, n_features: int = 4, *, shift: float = 3.0,
                            random_state: int = 0) -> Cohort:
    """A cohort where the group attributes matter only through their interaction: ``y``
    follows one logistic model of X for everyone, plus ``shift`` logits for old women.

    ``age`` is old for 30 % of the rows, ``sex`` female for 50 %, independently (old
    women: 15 %).  Told the attributes as additive one-hot inputs, a linear model spreads
    the shift over ``age=old`` and ``sex=female``: it helps old women and harms old men,
    who then do better claiming to be young (envy).  Told the intersectional subgroup, it
    helps old women and nobody else (Suriyakumar et al., ICML 2023, on why one-hot
    personalization can harm).
    """
    check_positive_int(n, name="n", minimum=40)
    rng = np.random.default_rng(random_state)
    X = rng.normal(size=(n, n_features))
    old = rng.random(n) < 0.3
    female = rng.random(n) < 0.5                   # old women: 15 % of the rows
    w = np.linspace(1.0, -0.5, n_features)
    z = X @ w + shift * (old & female) + rng.logistic(size=n) * 0.5
    groups = pd.DataFrame({"age": np.where(old, "old", "young"),
                           "sex": np.where(female, "female", "male")})
    meta = {"name": "interaction", "n": n, "random_state": random_state,
            "planted": f"+{shift} logits for old_female only"}
    return Cohort(X=pd.DataFrame(X.astype(np.float32),
                                 columns=[f"x{i}" for i in range(n_features)]),
                  y=pd.Series((z > 0).astype(np.int64), name="target"), groups=groups,
                  meta=meta)

