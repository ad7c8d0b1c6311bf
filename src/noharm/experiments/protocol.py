"""The seed-000 protocol (DESIGN §3): outer 80:20 splits x (seeds x stratified K-fold).

For each outer split, the training part is split ``n_folds`` ways (stratified
by subgroup x label) once per seed; run (seed, fold) trains on the other folds,
early-stops on that fold and is evaluated on the fixed test part, per
subgroup.  All runs of one model train together as one batched ensemble.
"""
from __future__ import annotations

import time
import warnings
from pathlib import Path
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .._validation import check_fraction, check_group_sizes, check_positive_int
from ..datasets import Cohort
from ..errors import ConfigError, GroupError
from ..training import TrainConfig, set_threads
from ..models import ConditionalBiasClassifier, DecoupledClassifier, GenericClassifier
from .backends import BACKENDS, execute
from .metrics import group_metrics
from .store import ResultsStore, fingerprint

MODEL_NAMES = ("generic", "decoupled", "conditional-bias", "logreg")
_NETS = {"generic": GenericClassifier, "decoupled": DecoupledClassifier,
         "conditional-bias": ConditionalBiasClassifier}


@dataclass
class ProtocolConfig:
    """Everything that defines a protocol run (written as the effective config)."""

    models: tuple[str, ...] = MODEL_NAMES
    n_seeds: int = 5
    n_folds: int = 5
    outer_splits: int = 1
    test_size: float = 0.2
    random_state: int = 0
    hidden_layers: int = 6
    hidden_units: int = 64
    dropout: float = 0.2
    lr: float = TrainConfig.lr
    batch_size: int = TrainConfig.batch_size
    max_epochs: int = TrainConfig.max_epochs
    patience: int = TrainConfig.patience
    attr_layers: int = 5
    n_bias: int = 1
    training: str = "two_stage"
    n_threads: int = TrainConfig.n_threads
    n_jobs: int = 1
    ensemble_size: int = 25
    harm_guard: bool = False
    guard_alpha: float = 0.05
    backend: str = "joblib"
    scheduler: str | None = None

    def validate(self) -> "ProtocolConfig":
        models = tuple(self.models)
        if not models:
            raise ConfigError("no models selected; choose from " + ", ".join(MODEL_NAMES) + ".")
        for m in models:
            if m not in MODEL_NAMES:
                raise ConfigError(f"unknown model {m!r}; choose from {', '.join(MODEL_NAMES)}.")
        if len(set(models)) != len(models):
            raise ConfigError(f"models repeat: {list(models)}.")
        self.models = models
        check_positive_int(self.n_seeds, name="n_seeds")
        check_positive_int(self.n_folds, name="n_folds", minimum=2)
        check_positive_int(self.outer_splits, name="outer_splits")
        check_fraction(self.test_size, name="test_size", high=0.9)
        check_positive_int(self.random_state, name="random_state", minimum=0)
        check_positive_int(self.n_jobs, name="n_jobs")
        check_positive_int(self.ensemble_size, name="ensemble_size")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose joblib or dask.")
        if self.backend == "dask" and not self.scheduler:
            raise ConfigError("--backend dask needs --scheduler ADDRESS (e.g. "
                              "tcp://127.0.0.1:8786) of a running Dask scheduler.")
        if self.backend != "dask" and self.scheduler:
            raise ConfigError("--scheduler belongs to --backend dask.")
        return self

    def net_params(self, model: str) -> dict[str, Any]:
        p = dict(hidden_layers=self.hidden_layers, hidden_units=self.hidden_units,
                 dropout=self.dropout, lr=self.lr, batch_size=self.batch_size,
                 max_epochs=self.max_epochs, patience=self.patience, n_threads=self.n_threads)
        if model == "conditional-bias":
            p.update(attr_layers=self.attr_layers, n_bias=self.n_bias, training=self.training)
        return p

    def to_dict(self) -> dict:
        d = asdict(self)
        d["models"] = list(self.models)
        return d


@dataclass
class ProtocolResult:
    """Tidy results (one row per model x outer split x seed x fold x group x metric)."""

    results: pd.DataFrame
    config: dict
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    splits: list[dict] = field(default_factory=list)


def _strata(groups: np.ndarray, y: np.ndarray, minimum: int) -> np.ndarray:
    key = np.char.add(groups.astype(str), "|" + y.astype(str))
    _, counts = np.unique(key, return_counts=True)
    return key if counts.min() >= minimum else groups


def make_runs(groups: np.ndarray, y: np.ndarray, cfg: ProtocolConfig, outer: int,
              split_by: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Test rows, train-part rows and the run list (seed, fold, train idx, val idx).

    With ``split_by`` (an id per row, e.g. the patient), rows sharing an id stay in the
    same split (StratifiedGroupKFold: the outer test part is one of round(1 / test_size)
    grouped folds)."""
    idx = np.arange(len(y))
    strat = _strata(groups, y, 2)
    if split_by is None:
        train_part, test_part = train_test_split(idx, test_size=cfg.test_size,
                                                 random_state=cfg.random_state + outer,
                                                 stratify=strat)
    else:
        k = max(2, int(round(1 / cfg.test_size)))
        sgk = StratifiedGroupKFold(k, shuffle=True, random_state=cfg.random_state + outer)
        train_part, test_part = next(sgk.split(idx, strat, split_by))
    train_part, test_part = np.sort(train_part), np.sort(test_part)
    missing = sorted(set(map(str, groups)) - set(map(str, groups[train_part])))
    if missing:
        raise GroupError(f"subgroup {missing[0]!r} is absent from the training data; "
                         "merge it with another group or use coarser bins.")
    inner = _strata(groups[train_part], y[train_part], cfg.n_folds)
    runs = []
    for seed in range(1, cfg.n_seeds + 1):
        rs = seed + 1000 * (cfg.random_state + outer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if split_by is None:
                folds = StratifiedKFold(cfg.n_folds, shuffle=True, random_state=rs).split(
                    train_part, inner)
            else:
                folds = StratifiedGroupKFold(cfg.n_folds, shuffle=True, random_state=rs).split(
                    train_part, inner, split_by[train_part])
            for fold, (tr, va) in enumerate(folds):
                runs.append({"seed": seed, "fold": fold, "train": train_part[tr],
                             "val": train_part[va]})
    return test_part, train_part, runs


def protocol_identity(cohort: Cohort, config: ProtocolConfig) -> dict:
    """What defines a protocol's results: the config (less where it runs) and the data."""
    cfg = config.to_dict()
    for k in ("n_jobs", "backend", "scheduler"):
        cfg.pop(k)
    split_by = None if cohort.split_by is None else cohort.split_by.to_numpy()
    data = fingerprint(cohort.X.to_numpy(), cohort.X.columns.to_numpy(),
                       cohort.y.to_numpy(), cohort.subgroups.to_numpy().astype(str),
                       *(() if split_by is None else (split_by,)))
    return {"protocol": cfg, "cohort": cohort.name, "data_sha256": data}


def run_protocol(cohort: Cohort, config: ProtocolConfig | None = None,
                 progress: Callable[[str], None] | None = None,
                 model_dir: str | Path | None = None, *, store: ResultsStore | None = None,
                 on_task: Callable[[int, int, str | None], None] | None = None
                 ) -> ProtocolResult:
    """Run every model of ``config`` over the protocol on ``cohort``.

    The runs of one model and outer split are trained as batched ensembles of at
    most ``config.ensemble_size`` members.  Tasks (outer split x model x ensemble)
    run in ``config.n_jobs`` processes (joblib, forked where possible, one torch
    thread each).  Every task is seeded on its own, so the results do not depend on
    ``n_jobs`` (they do depend on ``ensemble_size``, which groups the dropout streams).

    With ``config.harm_guard``, every personalized model P also gets a row
    ``harm-guard(P)``: per run, a :class:`~noharm.audit.HarmGuard` decision on that
    run's early-stopping fold chooses P or generic for each subgroup.

    With ``model_dir``, the fitted networks are saved to
    ``model_dir/<model>/split<o>[-part<c>]`` (safetensors + JSON).

    With ``store`` (a :class:`~noharm.experiments.store.ResultsStore` opened with
    :func:`protocol_identity`), every task is written to it as soon as it ends,
    tasks already there are skipped (resume), and the results are read back from it.
    ``on_task(runs_done, runs_total, message)`` is called at the start and after
    every task.
    """
    cfg = (config or ProtocolConfig()).validate()
    X = cohort.X
    y = cohort.y.to_numpy().astype(np.int64)
    groups = cohort.subgroups.to_numpy().astype(str)
    if len(X) != len(y) or len(groups) != len(y):
        raise ConfigError("cohort X, y and groups have different lengths.")
    if cfg.harm_guard and ("generic" not in cfg.models or
                           not {"decoupled", "conditional-bias"} & set(cfg.models)):
        raise ConfigError("--harm-guard needs the generic model and a personalized one "
                          "(decoupled or conditional-bias) among --models.")
    check_group_sizes(groups, minimum=2 * cfg.n_folds,
                      purpose=f"by the protocol (2 per fold, {cfg.n_folds} folds)")
    say = progress or (lambda s: None)
    split_by = None if cohort.split_by is None else cohort.split_by.to_numpy()
    splits = [make_runs(groups, y, cfg, outer, split_by) for outer in range(cfg.outer_splits)]
    n_runs = len(splits[0][2])
    chunks = np.array_split(np.arange(n_runs), -(-n_runs // cfg.ensemble_size))
    cost = {"conditional-bias": 0, "decoupled": 1, "generic": 2, "logreg": 3}
    tasks = sorted(((m, o, c) for o in range(cfg.outer_splits) for m in cfg.models
                    for c in range(len(chunks) if m != "logreg" else 1)),
                   key=lambda t: (cost[t[0]], t[1], t[2]))

    def runs_of(m: str, o: int, c: int) -> list[dict]:
        runs = splits[o][2]
        return runs if m == "logreg" else [runs[i] for i in chunks[c]]

    def save_to(m: str, o: int, c: int) -> str | None:
        if model_dir is None or m == "logreg":
            return None
        return str(Path(model_dir) / m / (f"split{o}" + (f"-part{c}" if len(chunks) > 1
                                                            else "")))

    store_done = store.finished() if store is not None else set()
    todo = [i for i, t in enumerate(tasks) if t not in store_done]
    total = sum(len(runs_of(*t)) for t in tasks)
    done = total - sum(len(runs_of(*tasks[i])) for i in todo)
    if store_done:
        say(f"resuming: {len(tasks) - len(todo)} of {len(tasks)} tasks already in the "
            "results store")
    say(f"{len(todo)} tasks ({n_runs} runs per model and split, ensembles of at most "
        f"{cfg.ensemble_size}) on {cfg.n_jobs if cfg.backend == 'joblib' else 'dask'} "
        f"worker(s)")
    if on_task is not None:
        on_task(done, total, None)
    args = [(tasks[i][1], tasks[i][0], runs_of(*tasks[i]), save_to(*tasks[i])) for i in todo]
    outs: dict[tuple, tuple] = {}
    for j, out in execute(_task, args, dict(cfg=cfg, X=X, y=y, groups=groups),
                          n_jobs=cfg.n_jobs, backend=cfg.backend, scheduler=cfg.scheduler,
                          n_threads=cfg.n_threads):
        task = tasks[todo[j]]
        if store is not None:
            store.write_task(*task, runs_of(*task), *out)
        else:
            outs[task] = out
        done += len(runs_of(*task))
        if on_task is not None:
            on_task(done, total, f"{task[0]} split {task[1]}"
                    + (f" part {task[2]}" if len(chunks) > 1 and task[0] != "logreg" else "")
                    + f" in {out[1]:.1f} s")
    notes: list[str] = []
    timings = {m: 0.0 for m in cfg.models}
    if store is not None:
        outs = {(m, o, c): (None, sec, note) for m, o, c, sec, note in store.tasks()}
    for task in sorted(tasks, key=lambda t: (t[1], cfg.models.index(t[0]), t[2])):
        _, seconds, note = outs[task]
        timings[task[0]] += seconds
        if note and note not in notes:
            notes.append(note)
            say(note)

    def proba_of(outer: int, model: str) -> np.ndarray | None:
        runs = splits[outer][2]
        if store is not None:
            return store.proba(model, outer, runs)
        parts = [outs[(model, outer, c)][0] for c in range(len(chunks) if model != "logreg"
                                                           else 1)]
        return None if any(p is None for p in parts) else np.vstack(parts)

    full = {(o, m): p for o in range(cfg.outer_splits) for m in cfg.models
            if (p := proba_of(o, m)) is not None}
    if not full:
        raise ConfigError("no model produced results; see the notes above.")
    frames = []
    for outer, (test, _, runs) in enumerate(splits):
        rows = {m: full[(outer, m)] for m in cfg.models if (outer, m) in full}
        if cfg.harm_guard and "generic" in rows:
            for pm in ("decoupled", "conditional-bias"):
                if pm in rows:
                    rows[f"harm-guard({pm})"] = _guarded(y, groups, runs, rows["generic"],
                                                         rows[pm], cfg.guard_alpha)
        for model, p in rows.items():
            m = group_metrics(y[test], p[:, test], groups[test])
            run = m.pop("run").to_numpy()
            m.insert(0, "model", model)
            m.insert(1, "outer_split", outer)
            m.insert(2, "seed", np.array([r["seed"] for r in runs])[run])
            m.insert(3, "fold", np.array([r["fold"] for r in runs])[run])
            frames.append(m)
    results = pd.concat(frames, ignore_index=True)
    split_info = [{"outer_split": o, "test": sp[0].tolist()} for o, sp in enumerate(splits)]
    return ProtocolResult(results=results, config={"protocol": cfg.to_dict(),
                                                   "cohort": cohort.meta},
                          timings=timings, notes=notes, splits=split_info)


def _guarded(y: np.ndarray, groups: np.ndarray, runs: list[dict], p_generic: np.ndarray,
             p_pers: np.ndarray, alpha: float) -> np.ndarray:
    """Harm-guarded probabilities (n_runs, n): per run, per group, generic where the run's
    early-stopping fold shows the personalized model to be worse (one-sided McNemar)."""
    from ..audit.guard import choose_per_group
    out = p_generic.copy()
    for r, run in enumerate(runs):
        v = run["val"]
        report = choose_per_group(y[v], p_generic[r, v], p_pers[r, v], groups[v], alpha)
        personal = set(report.loc[report["model"] == "personalized", "group"])
        use = np.isin(groups, list(personal))
        out[r, use] = p_pers[r, use]
    return out


def _task(outer: int, model: str, runs: list[dict], save_to: str | None, *,
          cfg: ProtocolConfig, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray
          ) -> tuple[np.ndarray | None, float, str | None]:
    """Train one model on some runs of one outer split (one ensemble).

    Returns P(y = 1) of every run on every row (n_runs, n), the seconds it took, and a
    note when a decoupled model cannot be trained."""
    t0 = time.perf_counter()
    try:
        with set_threads(cfg.n_threads):
            proba = _fit_predict(model, cfg, X, y, groups, runs, save_to)
    except GroupError as exc:
        if model != "decoupled":
            raise
        return None, time.perf_counter() - t0, f"split {outer}: decoupled skipped: {exc}"
    return proba, time.perf_counter() - t0, None


def _fit_predict(model: str, cfg: ProtocolConfig, X: pd.DataFrame, y: np.ndarray,
                 groups: np.ndarray, runs: list[dict], save_to: str | None) -> np.ndarray:
    """Probabilities (n_runs, n) of one model over the given runs, on every row."""
    if model == "logreg":
        Xa = X.to_numpy(dtype=np.float64)
        out = []
        for run in runs:
            pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
            pipe.fit(Xa[run["train"]], y[run["train"]])
            out.append(pipe.predict_proba(Xa)[:, 1])
        return np.vstack(out)
    est = _NETS[model](**cfg.net_params(model))
    est.fit_runs(X, y, sensitive_features=groups, train_indices=[r["train"] for r in runs],
                 val_indices=[r["val"] for r in runs],
                 seeds=[r["seed"] * 10 + r["fold"] for r in runs])
    if save_to is not None:
        est.save(save_to)
    return est.predict_proba_runs(X, sensitive_features=groups)
