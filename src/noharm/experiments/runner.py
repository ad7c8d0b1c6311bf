"""The one runner (DESIGN §8): every study's (model spec x outer split [x part]) tasks,
with the results store (resume), local processes or Dask, and progress callbacks.

A task is seeded on its own (seeds come from the plan), so results depend neither on
``n_jobs`` nor on the backend.  With a store, every task is written as it ends and the
results are always read back from the store, so a resumed study equals an
uninterrupted one to the byte.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .._validation import check_positive_int
from ..datasets import Cohort
from ..errors import ConfigError
from ..training import set_threads
from .backends import BACKENDS, execute
from .plan import Plan, make_plan
from .store import ResultsStore, TaskOutput, fingerprint
from .study import Evaluation, ModelSpec, Study, StudyData

OnTask = Callable[[int, int, "str | None"], None]


@dataclass
class RunOptions:
    """Where and how tasks run; never part of the results' identity."""

    n_jobs: int = 1
    backend: str = "joblib"
    scheduler: str | None = None
    n_threads: int = 1

    def validate(self) -> "RunOptions":
        check_positive_int(self.n_jobs, name="n_jobs")
        check_positive_int(self.n_threads, name="n_threads")
        if self.backend not in BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose joblib or dask.")
        if self.backend == "dask" and not self.scheduler:
            raise ConfigError("backend 'dask' needs a scheduler address (e.g. "
                              "tcp://127.0.0.1:8786) of a running Dask scheduler.")
        if self.backend != "dask" and self.scheduler:
            raise ConfigError("a scheduler address belongs to backend 'dask'.")
        return self


@dataclass
class StudyResult:
    """What a study produced: tidy results, its summary and Markdown, the plan."""

    study: str
    results: pd.DataFrame
    summary: pd.DataFrame
    text: str
    plan: Plan
    identity: dict
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    external_summary: pd.DataFrame | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def data_sha256(cohort: Cohort) -> str:
    """sha256 of what a study reads of a cohort (features, names, target, groups, ids)."""
    ids = () if cohort.split_by is None else (cohort.split_by.to_numpy(),)
    return fingerprint(cohort.X.to_numpy(), cohort.X.columns.to_numpy(), cohort.y.to_numpy(),
                       cohort.groups.astype(str).to_numpy(), cohort.groups.columns.to_numpy(),
                       *ids)


def build_plan(study: Study, cohort: Cohort, data: StudyData | None = None) -> Plan:
    """The study's split plan for this cohort."""
    data = data if data is not None else study.prepare(cohort)
    return make_plan(study.plan_spec(), data_sha256=data_sha256(cohort),
                     **study.plan_inputs(data))


def study_identity(study: Study, cohort: Cohort, plan: Plan,
                   external: Cohort | None = None) -> dict:
    """What defines a study's results: study, options, plan and data (not where it runs)."""
    out = {"study": study.name, "options": study.options(), "plan": asdict(plan.spec),
           "plan_sha256": plan.sha256, "cohort": cohort.name,
           "data_sha256": plan.data_sha256}
    if external is not None:
        out["external"] = {"cohort": external.name, "data_sha256": data_sha256(external)}
    return out


def external_data(study: Study, cohort: Cohort, external: Cohort) -> StudyData:
    """The external validation set's arrays, checked against the training cohort."""
    if not study.external_validation:
        raise ConfigError(f"the {study.name} study does not take an external test file; "
                          "use it with noharm personalize.")
    if list(external.X.columns) != list(cohort.X.columns):
        raise ConfigError("the external file's features differ from the training file's; "
                          "give it the same columns.")
    if list(external.groups.columns) != list(cohort.groups.columns):
        raise ConfigError("the external file's group attributes differ from the training "
                          "file's.")
    groups = external.subgroups.to_numpy().astype(str)
    unseen = sorted(map(str, set(groups) - set(cohort.subgroups.astype(str))))
    if unseen:
        raise ConfigError(f"the external file has subgroup(s) {unseen} that the training file "
                          "lacks; models that route by group cannot predict them (use "
                          "coarser --group cuts).")
    return StudyData(X=external.X, y=external.y.to_numpy(), groups=groups,
                     attributes=external.groups.astype(str).reset_index(drop=True))


@dataclass(frozen=True)
class _Task:
    spec: ModelSpec
    outer: int
    chunk: int
    runs: tuple[int, ...]            # indices into plan.runs(outer)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.spec.name, self.outer, self.chunk)


def _tasks(study: Study, plan: Plan) -> list[_Task]:
    n_runs = len(plan.runs(0))
    size = max(1, study.members_per_task())
    chunks = np.array_split(np.arange(n_runs), -(-n_runs // size))
    out = []
    for spec in study.model_specs():
        for o in range(plan.spec.outer_splits):
            parts = chunks if spec.batched else [np.arange(n_runs)]
            out += [_Task(spec, o, c, tuple(int(i) for i in part))
                    for c, part in enumerate(parts)]
    return sorted(out, key=lambda t: (t.spec.cost, t.outer, t.chunk))


def _work(spec: ModelSpec, outer: int, run_ids: tuple[int, ...], save_to: str | None, *,
          study: Study, data: StudyData, plan: Plan, n_threads: int) -> TaskOutput:
    """The only worker: fit one model spec on some runs of one outer split."""
    t0 = time.perf_counter()
    all_runs = plan.runs(outer)
    runs = [all_runs[i] for i in run_ids]
    try:     # torch, BLAS and OpenMP (scikit-learn's HGB) all at n_threads per worker
        with set_threads(n_threads), threadpool_limits(n_threads):
            out = study.fit_predict(spec, data, plan, outer, runs, save_to)
    except spec.skip_on as exc:
        return TaskOutput({}, {}, time.perf_counter() - t0,
                          f"split {outer}: {spec.name} skipped: {exc}")
    out.seconds = time.perf_counter() - t0
    return out


def _merge(parts: list[TaskOutput]) -> TaskOutput:
    """One output per (model, outer split) from its parts (arrays joined on the run axis)."""
    if any(not p.arrays for p in parts):
        return TaskOutput({}, {}, sum(p.seconds for p in parts),
                          next((p.note for p in parts if p.note), None))
    arrays = {k: np.concatenate([p.arrays[k] for p in parts]) if len(parts) > 1
              else parts[0].arrays[k] for k in parts[0].arrays}
    info: dict = {}
    for p in parts:
        for k, v in p.info.items():
            info[k] = info.get(k, []) + list(v) if isinstance(v, list) else v
    return TaskOutput(arrays, info, sum(p.seconds for p in parts),
                      next((p.note for p in parts if p.note), None))


def _columns_left_out(data: StudyData, plan: Plan) -> list[str]:
    """A note per outer split naming the feature columns with no variation (missing on
    every row, or one value) on the training rows of some of its runs: every model
    leaves such a column out of those runs (it has nothing to learn from)."""
    X = data.X
    if not isinstance(X, pd.DataFrame) or X.empty or not all(
            pd.api.types.is_numeric_dtype(t) for t in X.dtypes):
        return []                      # image cohorts: X holds file paths
    notes = []
    n_distinct = X.nunique(dropna=False).to_numpy()
    for outer in range(plan.spec.outer_splits):
        runs = plan.runs(outer)
        rows_of = [np.union1d(r["train"], r["early_stop"]) for r in runs]
        # a column can hold one value (or only NaN) on m of its n rows only if it has at
        # most n - m + 1 distinct values: the others (measurements) are not looked at
        fewest = min((len(r) for r in rows_of), default=0)
        cand = np.flatnonzero(n_distinct <= len(X) - fewest + 1)
        if not len(cand):
            continue
        values = X.iloc[:, cand].to_numpy(dtype=np.float64, na_value=np.nan)
        hits: dict[str, int] = {}
        for rows in rows_of:
            v = values[rows]
            nan = np.isnan(v)
            one = ~nan.any(0)
            flat = nan.all(0)
            flat[one] = v[:, one].max(0) == v[:, one].min(0)
            for c in cand[flat]:
                hits[X.columns[c]] = hits.get(X.columns[c], 0) + 1
        if hits:
            shown = ", ".join(f"{c} ({k} of {len(runs)} runs)" for c, k in
                              list(hits.items())[:5])
            more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
            notes.append(f"split {outer}: column(s) {shown}{more} are missing on every "
                         "training row of a run or hold one value there; every model "
                         "leaves them out of those runs (nothing to learn from).")
    return notes


def _absent_subgroups(results: pd.DataFrame, data: StudyData) -> list[str]:
    """A note per outer split for each subgroup of the data with no test row there (it is
    then absent from that split's tables, not silently dropped)."""
    test = results[results["role"] == "test"]
    if test.empty or "subgroup" not in test:
        return []
    known = set(map(str, np.unique(data.groups)))
    if not known & set(map(str, test["subgroup"])):
        return []                         # a study that reports per attribute, not subgroup
    notes = []
    for outer, d in test.groupby("outer_split"):
        missing = sorted(known - set(map(str, d["subgroup"])))
        if missing:
            notes.append(f"split {outer}: subgroup(s) {', '.join(missing)} have no test rows, "
                         "so they are absent from its tables (too few rows: use coarser "
                         "groups or more data).")
    return notes


def run_study(study: Study, cohort: Cohort, options: RunOptions | None = None, *,
              store: ResultsStore | None = None, model_dir: str | Path | None = None,
              progress: Callable[[str], None] | None = None,
              on_task: OnTask | None = None, plan: Plan | None = None,
              external: Cohort | None = None) -> StudyResult:
    """Run every task of ``study`` on ``cohort`` and evaluate the results.

    Parameters
    ----------
    options : where tasks run (processes, Dask); results do not depend on it.
    store : a :class:`~.store.ResultsStore` opened with :func:`study_identity`; finished
        tasks are skipped and results are read back from it.
    model_dir : save fitted models under ``model_dir/<model>/split<o>[-part<c>]``.
    progress : receives one-line messages.
    on_task : ``on_task(runs_done, runs_total, message)`` at the start and after each task.
    plan : a plan made by :func:`build_plan` (made here when None).
    external : an external validation cohort (same features and groups): every run is
        also evaluated on all of its rows (role ``external``).
    """
    opts = (options or RunOptions()).validate()
    say = progress or (lambda s: None)
    data = study.prepare(cohort)
    if external is not None:
        data.external = external_data(study, cohort, external)
    plan = plan if plan is not None else build_plan(study, cohort, data)
    left_out = _columns_left_out(data, plan)
    tasks = _tasks(study, plan)
    n_parts = {(t.spec.name, t.outer): 0 for t in tasks}
    for t in tasks:
        n_parts[(t.spec.name, t.outer)] += 1

    def save_to(t: _Task) -> str | None:
        if model_dir is None:
            return None
        part = f"-part{t.chunk}" if n_parts[(t.spec.name, t.outer)] > 1 else ""
        return str(Path(model_dir) / t.spec.name / f"split{t.outer}{part}")

    finished = store.finished() if store is not None else set()
    todo = [t for t in tasks if t.key not in finished]
    total = sum(len(t.runs) for t in tasks)
    done = total - sum(len(t.runs) for t in todo)
    if finished:
        say(f"resuming: {len(tasks) - len(todo)} of {len(tasks)} tasks already in the "
            "results store")
    where = opts.n_jobs if opts.backend == "joblib" else "dask"
    say(f"{study.name}: {len(todo)} tasks on {where} worker(s)")
    if on_task is not None:
        on_task(done, total, None)
    outs: dict[tuple[str, int, int], TaskOutput] = {}
    args = [(t.spec, t.outer, t.runs, save_to(t)) for t in todo]
    shared = dict(study=study, data=data, plan=plan, n_threads=opts.n_threads)
    for j, out in execute(_work, args, shared, n_jobs=opts.n_jobs, backend=opts.backend,
                          scheduler=opts.scheduler, n_threads=opts.n_threads):
        t = todo[j]
        if store is not None:
            store.write_task(*t.key, out)
        else:
            outs[t.key] = out
        done += len(t.runs)
        if on_task is not None:
            part = f" part {t.chunk}" if n_parts[(t.spec.name, t.outer)] > 1 else ""
            on_task(done, total, f"{t.spec.name} split {t.outer}{part} in {out.seconds:.1f} s")
    if store is not None:
        outs = {t.key: store.read_task(*t.key) for t in tasks}
    merged: dict[tuple[str, int], TaskOutput] = {}
    for key in n_parts:
        parts = [outs[(key[0], key[1], c)] for c in range(n_parts[key])]
        merged[key] = _merge(parts)
    notes: list[str] = list(left_out)
    for (model, _), out in sorted(merged.items(), key=lambda kv: kv[0][1]):
        if out.note and out.note not in notes:
            notes.append(out.note)
            say(out.note)
    if not any(o.arrays for o in merged.values()):
        raise ConfigError("no model produced results; see the notes above.")
    context = Evaluation(data, plan, merged)
    results = study.evaluate_context(context)
    notes += _absent_subgroups(results, data)
    summary = study.summarize(results, context)
    ext_summary = study.summarize_external(results, context) if external is not None else None
    text = study.render(summary, results, cohort.name, plan, external=ext_summary)
    return StudyResult(study.name, results, summary, text, plan,
                       study_identity(study, cohort, plan, external), study.timings(merged),
                       notes, {k: o.info for k, o in merged.items() if o.info}, ext_summary,
                       study.extra_tables(context))


__all__ = ["RunOptions", "StudyResult", "build_plan", "data_sha256", "run_study",
           "study_identity"]
