"""Fair use of group attributes (issue 28): does each group gain from giving its
attribute to the model?

For every model family (logistic regression, gradient boosting, the generic MLP, any
classifier) the audit fits two forms on the same rows (:mod:`noharm.models.forms`): the
**blind** form (group columns and declared proxies removed) and the **aware** form (the
attributes added as one-hot inputs).  On held-out **audit rows** that neither form saw it
asks, per group ``s`` (Suriyakumar, Ghassemi & Ustun, ICML 2023; seed 001):

* **rationality** — BoP(s) = cost(blind, s) - cost(aware, s) for log-loss, 0-1 loss,
  AUROC (the gain in AUROC) and the Brier score (calibration); ``helps`` if the aware form
  is significantly better for ``s``, ``harms`` (rationality violated) if significantly
  worse, else ``cannot tell``.  The aware form is also tested against **every** blind
  model of the audit (intersection-union test: it must beat the best blind model,
  whichever that is, with no selection on the audit rows);
* **envy-freeness** — the aware model applied to the rows of ``s`` as if they belonged
  to each other group ``s'``: envy if some ``s'`` gives ``s`` a significantly lower
  log-loss than its own attribute;
* the **minimal group BoP** gamma = min_s BoP(s) (seed 001) and its test of H0: gamma <= 0
  (rejected only if every group gains: an intersection-union test, p = max_s p_s);
* with ``explain=True``, the BoP for **explanation quality** (seed 001): sufficiency and
  incomprehensiveness of each form's top ``top_frac`` features by feature ablation
  (:func:`noharm.audit.explain.explanation_costs`; a removed feature takes its mean on the
  fit rows, so no audited row shapes it), model-agnostic, so every family has them.

The tests are those of the guard (:func:`noharm.guard.guard_tests`: studentized
bootstrap, exact McNemar for 0-1 loss, DeLong for AUROC; per patient with ids; groups
under ``min_units`` audit units are not tested), one-sided in each direction, Holm-adjusted
over every family x group x direction of a metric (and over every (s, s') pair of a family
for envy).  They concern the fitted models on data drawn like the training data.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from .._validation import (check_binary_y, check_choice, check_fraction, check_groups,
                           check_numeric_y, check_positive_int)
from ..errors import ConfigError, GroupError
from ..models.base import NotFittedError
from ..inference import holm
from ..splits import holdout
from ..guard import MIN_GUARD_UNITS, unit_means, guard_tests

METRICS = ("log-loss", "zero-one", "auroc", "brier")
REGRESSION_METRICS = ("squared-error",)
EXPLANATION = ("sufficiency", "incomprehensiveness")
_GUARD_METRIC = {"log-loss": "log-loss", "zero-one": "zero-one", "auroc": "auroc",
                 "brier": "squared-error", "squared-error": "squared-error"}
_POINTWISE = {"log-loss": "log_loss", "zero-one": "zero_one", "brier": "brier",
              "squared-error": "squared_error"}


def default_families(task: str = "classification") -> dict[str, Any]:
    """Logistic (ridge, for regression) regression and gradient boosting (the fast
    families); add ``GenericClassifier()`` / ``GenericRegressor()`` for the MLP."""
    if task == "regression":
        from ..models.regression import ReferenceRegressor
        return {"linreg": ReferenceRegressor("linreg"), "hgb": ReferenceRegressor("hgb")}
    from ..models.reference import ReferenceClassifier
    return {"logreg": ReferenceClassifier("logreg"), "hgb": ReferenceClassifier("hgb")}


class FairUseAudit(BaseEstimator):
    """Per group: does the aware form of each model family beat its blind form
    (rationality), and would the group do better claiming another group's attribute
    (envy)?

    Parameters
    ----------
    families : dict name -> unfitted classifier, default logistic regression and
        gradient boosting.  Each is fitted twice: blind and aware.
    group_columns : columns of X holding the group attributes; removed from both forms
        (the aware form gets the attributes as one-hot inputs instead).
    proxies : further columns removed from both forms (declared stand-ins).
    encoding : ``"intersectional"`` (one input per subgroup, default) or ``"onehot"`` (one
        per level of each attribute; needs ``sensitive_features`` as a DataFrame).
    metrics : the rationality metrics, default all of ``log-loss``, ``zero-one``,
        ``auroc``, ``brier``; the first is the metric of envy and gamma.  With
        ``task="regression"``: ``squared-error`` (the only one).
    task : ``"classification"`` (binary target, default) or ``"regression"`` (numeric
        target; the families are regressors).
    audit_size : share of the rows held out as audit rows (stratified by group x label,
        grouped by ``patient_ids``), default 0.3.
    alpha : family-wise error level of each metric's tests (Holm), default 0.05.
    min_units : groups with fewer audit units are not tested, default 20.
    explain : add the explanation BoP (sufficiency, incomprehensiveness), default True.
    top_frac : share of the features kept / removed by the explanation costs, default 0.4.
    random_state : seed of the split (the families keep their own seeds).

    Attributes
    ----------
    rationality_ : one row per family x metric x group: n, cost_blind, cost_aware, bop
        (> 0: the aware form helps), ci_low, ci_high, p_helps, p_harms (one-sided), their
        Holm-adjusted p_holm_helps / p_holm_harms, detectable, verdict.
    versus_blind_ : per family x group, the aware form against every blind model.
    envy_ : per family x group x other group: loss_own, loss_as, gap (> 0: envy), its
        interval, p_value, p_holm, envy (bool).
    gamma_ : per family: gamma, its bootstrap interval, p_value, verdict.
    summary_ : per family x group: the verdicts side by side.
    audit_rows_ : indices of the audit rows.
    """

    def __init__(self, families: dict | None = None, *, group_columns: tuple = (),
                 proxies: tuple = (), encoding: str = "intersectional",
                 metrics: tuple | None = None, task: str = "classification",
                 audit_size: float = 0.3, alpha: float = 0.05,
                 min_units: int = MIN_GUARD_UNITS, explain: bool = True,
                 top_frac: float = 0.4, random_state: int = 0):
        self.families = families
        self.group_columns = group_columns
        self.proxies = proxies
        self.encoding = encoding
        self.metrics = metrics
        self.task = task
        self.audit_size = audit_size
        self.alpha = alpha
        self.min_units = min_units
        self.explain = explain
        self.top_frac = top_frac
        self.random_state = random_state

    # -- fitting --------------------------------------------------------------------------
    def _check(self) -> dict:
        from ..models.forms import ENCODINGS
        check_choice(self.encoding, name="encoding", choices=ENCODINGS)
        check_fraction(self.audit_size, name="audit_size", high=0.9)
        check_fraction(self.alpha, name="alpha", high=0.5)
        check_positive_int(self.min_units, name="min_units", minimum=2)
        check_choice(self.task, name="task", choices=("classification", "regression"))
        allowed = REGRESSION_METRICS if self.task == "regression" else METRICS
        self.metrics_ = tuple(allowed if self.metrics is None else self.metrics)
        if not self.metrics_:
            raise ConfigError(f"metrics is empty; give e.g. {allowed[:1]}.")
        for m in self.metrics_:
            check_choice(m, name="metric", choices=allowed)
        fams = (self.families if self.families is not None else
                default_families(self.task))
        if not fams:
            raise ConfigError("FairUseAudit needs at least one model family.")
        return dict(fams)

    def fit(self, X: Any, y: Any, *, sensitive_features: Any,
            patient_ids: Any = None) -> "FairUseAudit":
        """Hold out the audit rows, fit both forms of every family on the rest, test."""
        from ..models.forms import GroupAware, GroupBlind, as_frame
        fams = self._check()
        X = as_frame(X).reset_index(drop=True)
        if self.task == "regression":
            y01 = check_numeric_y(y, n_rows=len(X))
        else:
            y01, self.classes_ = check_binary_y(y, n_rows=len(X))
        labels = check_groups(sensitive_features, n_rows=len(X))
        attrs = (sensitive_features.reset_index(drop=True).astype(str)
                 if isinstance(sensitive_features, pd.DataFrame) else
                 pd.DataFrame({"group": labels}))
        if self.encoding == "onehot" and attrs.shape[1] < 2:
            raise ConfigError("encoding='onehot' needs several attributes: pass "
                              "sensitive_features as a DataFrame with one column per "
                              "attribute (with one attribute it equals 'intersectional').")
        ids = None if patient_ids is None else np.asarray(patient_ids).astype(str)
        if ids is not None and ids.shape != (len(X),):
            raise ConfigError(f"patient_ids has {ids.size} values for {len(X)} rows; give "
                              "one id per row.")
        if ids is not None and "auroc" in self.metrics_:
            if self.metrics is not None:
                raise ConfigError("the auroc metric treats rows as independent, but the rows "
                                  "have patient ids (several rows per patient); use log-loss, "
                                  "zero-one or brier.")
            self.metrics_ = tuple(m for m in self.metrics_ if m != "auroc")
        names, counts = np.unique(labels, return_counts=True)
        if len(names) < 2:
            raise GroupError("the audit needs at least two groups; sensitive_features has "
                             f"one ({names[0]!r}).")
        fit_rows, audit = holdout(np.arange(len(X)), self.audit_size, labels,
                                  None if self.task == "regression" else y01, ids,
                                  self.random_state + 4241)
        unfit = sorted(set(labels) - set(labels[fit_rows]))
        if unfit:
            sizes = ", ".join(f"{g} {int(np.sum(labels == g))}" for g in unfit[:5])
            raise GroupError(f"group(s) {unfit[:5]} have no rows left to fit on once the audit "
                             f"rows are held out (rows: {sizes}); the aware form cannot "
                             "learn an input for them: merge them with another group or "
                             "use coarser groups.")
        kw = dict(group_columns=tuple(self.group_columns), proxies=tuple(self.proxies),
                  encoding=self.encoding)
        self.blind_, self.aware_ = {}, {}
        Xf, Af = X.iloc[fit_rows], attrs.iloc[fit_rows]
        for name, est in fams.items():
            self.blind_[name] = GroupBlind(clone(est), **kw).fit(Xf, y01[fit_rows],
                                                                sensitive_features=Af)
            self.aware_[name] = GroupAware(clone(est), **kw).fit(Xf, y01[fit_rows],
                                                                sensitive_features=Af)
        Xa, Aa, ya, ga = X.iloc[audit], attrs.iloc[audit], y01[audit], labels[audit]
        ia = None if ids is None else ids[audit]
        p0 = {f: self._predict(m, Xa, Aa) for f, m in self.blind_.items()}
        pa = {f: self._predict(m, Xa, Aa) for f, m in self.aware_.items()}
        self.audit_rows_ = audit
        self.rationality_ = self._rationality(ya, ga, p0, pa, ia)
        if self.explain:
            self.rationality_ = pd.concat(
                [self.rationality_, self._explanation(Xf, Af, Xa, Aa, ga, ia)],
                ignore_index=True)
        self.versus_blind_ = self._versus_blind(ya, ga, p0, pa, ia)
        level_attrs = {g: attrs.iloc[np.flatnonzero(labels == g)[0]] for g in names}
        self.envy_ = self._envy(Xa, ya, ga, ia, pa, level_attrs, attrs.columns)
        self.gamma_ = self._gamma(ya, ga, p0, pa, ia)
        self.summary_ = self._summary()
        return self

    def _predict(self, model: Any, X: Any, A: Any) -> np.ndarray:
        """P(y = 1), or the prediction of a regressor."""
        if self.task == "regression":
            return np.asarray(model.predict(X, sensitive_features=A), dtype=float)
        return model.predict_proba(X, sensitive_features=A)[:, 1]

    # -- the tests ------------------------------------------------------------------------
    def _tests(self, y, g, ref, cand, metric, ids) -> pd.DataFrame:
        return guard_tests(y, g, ref, cand, metric=_GUARD_METRIC[metric], alpha=self.alpha,
                           ids=None if metric == "auroc" else ids,
                           min_units=self.min_units, random_state=self.random_state)

    def _rationality(self, y, g, p0, pa, ids) -> pd.DataFrame:
        frames = []
        for metric in self.metrics_:
            rows = []
            for fam in p0:
                helps = self._tests(y, g, p0[fam], {fam: pa[fam]}, metric, ids)
                harms = self._tests(y, g, pa[fam], {fam: p0[fam]}, metric, ids)
                for (_, h), (_, w) in zip(helps.iterrows(), harms.iterrows()):
                    m = g == h["group"]
                    rows.append({"family": fam, "metric": metric, "group": h["group"],
                                 "n": int(h["n"]),
                                 "cost_blind": _cost(y[m], p0[fam][m], metric),
                                 "cost_aware": _cost(y[m], pa[fam][m], metric),
                                 "bop": h["effect"], "ci_low": h["ci_low"],
                                 "ci_high": h["ci_high"], "p_helps": h["p_value"],
                                 "p_harms": w["p_value"], "detectable": h["detectable"]})
            t = pd.DataFrame(rows)
            _holm_verdicts(t, self.alpha)
            frames.append(t)
        return pd.concat(frames, ignore_index=True)

    def _explanation(self, Xf, Af, Xa, Aa, g, ids) -> pd.DataFrame:
        """Sufficiency and incomprehensiveness BoP per family and group (feature
        ablation on each form's own inputs; baselines: the fit rows' means)."""
        import torch

        from ..inference import smallest_detectable, studentized_bootstrap_test
        from .explain import explanation_costs
        costs: dict[str, dict[str, dict]] = {}
        for fam in self.blind_:
            for form, model in (("blind", self.blind_[fam]), ("aware", self.aware_[fam])):
                F_fit = model._features(Xf, Af).to_numpy(np.float64)
                F_aud = model._features(Xa, Aa)
                values = np.array(F_aud.to_numpy(np.float32))          # writable copy
                cols, inner = list(F_aud.columns), model.estimator_

                def forward(x, codes, cols=cols, inner=inner):
                    frame = pd.DataFrame(x.detach().numpy(), columns=cols)
                    out = (inner.predict(frame) if self.task == "regression" else
                           np.asarray(inner.predict_proba(frame))[:, 1])
                    return torch.from_numpy(np.asarray(out, dtype=np.float32))
                costs.setdefault(fam, {})[form] = explanation_costs(
                    forward, values, method="feature_ablation",
                    top_frac=self.top_frac, baseline=np.nanmean(F_fit, 0))
        rows = []
        level = self.alpha / (2 * len(costs) * len(set(g)))     # Holm's first step
        for metric in EXPLANATION:
            block = []
            for fam, c in costs.items():
                d = c["blind"][metric] - c["aware"][metric]
                for grp in sorted(set(g)):
                    m = g == grp
                    u = d[m] if ids is None else unit_means(d[m], ids[m])
                    n = len(u)
                    mean, lo, hi, p_up = studentized_bootstrap_test(
                        u, random_state=self.random_state)
                    _, _, _, p_down = studentized_bootstrap_test(
                        -u, random_state=self.random_state)
                    if n < self.min_units:
                        p_up = p_down = 1.0
                    sd = float(np.std(u, ddof=1)) if n > 1 else float("nan")
                    block.append({"family": fam, "metric": metric, "group": grp, "n": n,
                                  "cost_blind": float(c["blind"][metric][m].mean()),
                                  "cost_aware": float(c["aware"][metric][m].mean()),
                                  "bop": mean, "ci_low": lo, "ci_high": hi,
                                  "p_helps": p_up, "p_harms": p_down,
                                  "detectable": (float("inf") if n < self.min_units or
                                                 not sd > 0 else
                                                 smallest_detectable(sd, n, level))})
            t = pd.DataFrame(block)
            _holm_verdicts(t, self.alpha)
            rows.append(t)
        return pd.concat(rows, ignore_index=True)

    def _versus_blind(self, y, g, p0, pa, ids) -> pd.DataFrame:
        metric = self.metrics_[0]
        rows = [self._tests(y, g, dict(p0), {fam: pa[fam]}, metric, ids).assign(family=fam)
                for fam in pa]
        t = pd.concat(rows, ignore_index=True)
        t["p_holm"] = holm(t["p_value"].to_numpy())
        t["verdict"] = np.where(t["p_holm"] < self.alpha, "helps", "cannot tell")
        return t[["family", "group", "versus", "n", "effect", "ci_low", "ci_high",
                  "p_value", "p_holm", "verdict"]].rename(columns={"effect": "bop"})

    def _envy(self, Xa, y, g, ids, pa, level_attrs, columns) -> pd.DataFrame:
        metric = self.metrics_[0]
        frames = []
        for fam, model in self.aware_.items():
            rows = []
            for s in sorted(set(g)):
                m = g == s
                others = {}
                for s2, a in level_attrs.items():
                    if s2 == s:
                        continue
                    A = pd.DataFrame([a.to_numpy()] * int(m.sum()), columns=columns)
                    others[s2] = self._predict(model, Xa[m], A)
                t = self._tests(y[m], np.full(int(m.sum()), s), pa[fam][m], others, metric,
                                None if ids is None else ids[m])
                for _, r in t.iterrows():
                    rows.append({"family": fam, "group": s, "as_group": r["candidate"],
                                 "n": int(r["n"]),
                                 "loss_own": _cost(y[m], pa[fam][m], metric),
                                 "loss_as": _cost(y[m], others[r["candidate"]], metric),
                                 "gap": r["effect"], "ci_low": r["ci_low"],
                                 "ci_high": r["ci_high"], "p_value": r["p_value"]})
            t = pd.DataFrame(rows)
            t["p_holm"] = holm(t["p_value"].to_numpy())
            t["envy"] = t["p_holm"] < self.alpha
            frames.append(t)
        return pd.concat(frames, ignore_index=True)

    def _gamma(self, y, g, p0, pa, ids) -> pd.DataFrame:
        from .bop import benefit_of_personalization, pointwise_loss
        metric = self.metrics_[0]
        t = self.rationality_[self.rationality_["metric"] == metric]
        rows = []
        for fam in p0:
            r = t[(t["family"] == fam) & (t["n"] >= self.min_units)]
            if r.empty:
                rows.append({"family": fam, "gamma": np.nan, "ci_low": np.nan,
                             "ci_high": np.nan, "of_group": "", "p_value": 1.0,
                             "verdict": "cannot tell"})
                continue
            use = np.isin(g, r["group"].to_numpy())
            if metric in _POINTWISE:
                l0 = pointwise_loss(y[use], p0[fam][use], _POINTWISE[metric])
                la = pointwise_loss(y[use], pa[fam][use], _POINTWISE[metric])
                gu = g[use]
                if ids is not None:                  # one unit per patient, as the tests
                    keys = pd.Series(ids[use]).astype(str) + "\x00" + pd.Series(gu)
                    frame = pd.DataFrame({"k": keys, "g": gu, "l0": l0, "la": la}).groupby(
                        "k", sort=True).agg(g=("g", "first"), l0=("l0", "mean"),
                                            la=("la", "mean"))
                    l0, la, gu = (frame["l0"].to_numpy(), frame["la"].to_numpy(),
                                  frame["g"].to_numpy())
                b = benefit_of_personalization(l0, la, gu, random_state=self.random_state
                                               ).set_index("group").loc["min_group"]
                low, high = b["ci_low"], b["ci_high"]
            else:
                low = high = np.nan
            worst = r.loc[r["bop"].idxmin()]
            p = float(r["p_helps"].max())            # intersection-union: every group gains
            rows.append({"family": fam, "gamma": float(worst["bop"]), "ci_low": low,
                         "ci_high": high, "of_group": worst["group"], "p_value": p,
                         "verdict": "every group gains" if p < self.alpha else
                         "cannot tell"})
        return pd.DataFrame(rows)

    def _summary(self) -> pd.DataFrame:
        metric = self.metrics_[0]
        t = self.rationality_[self.rationality_["metric"] == metric]
        vb = self.versus_blind_.set_index(["family", "group"])
        rows = []
        for _, r in t.iterrows():
            e = self.envy_[(self.envy_["family"] == r["family"]) &
                           (self.envy_["group"] == r["group"])]
            sig = e[e["envy"]]
            worst = (sig.loc[sig["gap"].idxmax()] if len(sig) else
                     e.loc[e["gap"].idxmax()] if len(e) and e["gap"].notna().any() else None)
            rows.append({"family": r["family"], "group": r["group"], "n": r["n"],
                         "bop": r["bop"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "rationality": {"helps": "holds", "harms": "violated"}.get(
                             r["verdict"], "cannot tell"),
                         "vs_every_blind": vb.loc[(r["family"], r["group"]), "verdict"],
                         "envy": "envies " + str(worst["as_group"])
                         if worst is not None and worst["envy"] else
                         ("cannot tell" if r["n"] < self.min_units else "none found"),
                         "envy_gap": np.nan if worst is None else worst["gap"]})
        return pd.DataFrame(rows)

    def _check_fitted(self) -> None:
        if not hasattr(self, "summary_"):
            raise NotFittedError("this FairUseAudit is not fitted yet; call fit first.")

    def individual_bop(self, X: Any, y: Any, *, sensitive_features: Any,
                       family: str | None = None) -> np.ndarray:
        """Per-row BoP (blind minus aware loss: log-loss, squared error for regression)
        of one family on rows the caller supplies (e.g. the audit rows, for the BoP
        distribution family and the reliability bound of :mod:`noharm.audit.bounds`)."""
        from .bop import pointwise_loss
        self._check_fitted()
        fam = family or next(iter(self.blind_))
        if fam not in self.blind_:
            raise ConfigError(f"no family {fam!r}; the audit has {sorted(self.blind_)}.")
        if self.task == "regression":
            yy, loss = np.asarray(y, dtype=float), "squared_error"
        else:                            # coded with the classes seen at fit
            yv = np.asarray(y)
            unknown = sorted(map(str, set(yv.tolist()) - set(self.classes_.tolist())))
            if unknown:
                raise ConfigError(f"y holds value(s) {unknown[:5]} the audit was not fitted "
                                  f"with (its classes: {list(self.classes_)}).")
            yy, loss = (yv == self.classes_[1]).astype(int), "log_loss"
        p0 = self._predict(self.blind_[fam], X, sensitive_features)
        pa = self._predict(self.aware_[fam], X, sensitive_features)
        return pointwise_loss(yy, p0, loss) - pointwise_loss(yy, pa, loss)


def _holm_verdicts(t: pd.DataFrame, alpha: float) -> None:
    """Holm over both one-sided directions of every row of ``t`` (in place): adjusted
    ``p_holm_helps`` / ``p_holm_harms`` and the verdict helps / harms / cannot tell."""
    adj = holm(np.concatenate([t["p_helps"], t["p_harms"]]))
    t["p_holm_helps"], t["p_holm_harms"] = adj[:len(t)], adj[len(t):]
    t["verdict"] = np.where(t["p_holm_helps"] < alpha, "helps",
                            np.where(t["p_holm_harms"] < alpha, "harms", "cannot tell"))


def _cost(y: np.ndarray, p: np.ndarray, metric: str) -> float:
    """A group's cost (AUROC for ``auroc``: higher is better there)."""
    from .bop import pointwise_loss
    if metric == "auroc":
        from sklearn.metrics import roc_auc_score
        return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")
    return float(pointwise_loss(y, p, _POINTWISE[metric]).mean())


__all__ = ["FairUseAudit", "METRICS", "default_families"]
