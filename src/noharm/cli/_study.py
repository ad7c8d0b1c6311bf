"""Run a study from a command: claim the output directory, open the store, show
progress, print the Markdown and write every output file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from ..errors import ConfigError, GroupError
from ._data import DataSource


def default_jobs() -> int:
    """The cores available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def refuse_options(ctx: typer.Context, names: tuple[str, ...], what: str) -> None:
    """Exit 2 (ConfigError) when an option of ``names`` was given that ``what`` does not
    use (given: on the command line or in --config, not left at its default)."""
    given = [n for n in names
             if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") != "DEFAULT"]
    if given:
        opts = ", ".join("--" + n.replace("_", "-") for n in given)
        raise ConfigError(f"{opts} do(es) not apply to {what}; leave it out.")


def say_fn(quiet: bool) -> Callable[[str], None]:
    return (lambda s: None) if quiet else (lambda s: typer.echo(s, err=True))


class Progress:
    """Runs done / total with an ETA: a rich bar on a terminal, one plain line per
    finished task otherwise (logs), nothing when quiet."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console
        self.quiet, self.console, self.bar, self.task = quiet, Console(stderr=True), None, None

    def __call__(self, done: int, total: int, message: Optional[str]) -> None:
        if self.quiet:
            return
        if not self.console.is_terminal:
            if message:
                self.console.print(f"[{done}/{total} runs] {message}", highlight=False,
                                   markup=False)
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)
        if self.bar is None:
            self.bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                TextColumn("{task.description}"), console=self.console)
            self.bar.start()
            self.task = self.bar.add_task("", total=total, completed=done)
        self.bar.update(self.task, completed=done, description=message or "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_command(study: Any, source: DataSource, *, output: Optional[Path], force_new: bool,
                jobs: Optional[int], backend: str = "joblib", scheduler: Optional[str] = None,
                quiet: bool = False, save_models: bool = True) -> Any:
    """Load the cohort, run ``study`` (resuming from ``output``) and write its outputs.

    Everything is checked (options, data, plan, output directory) before the first
    message, so a bad input ends in one line."""
    from contextlib import nullcontext

    from ..experiments import RunOptions, build_plan, run_study, study_identity
    from ..experiments.rundir import RunDirectory
    from ..experiments.store import STORE_NAME, ResultsStore

    options = RunOptions(n_jobs=default_jobs() if jobs is None else jobs, backend=backend,
                         scheduler=scheduler).validate()
    say = say_fn(quiet)
    import numpy as np
    with np.errstate(over="ignore"):   # a value beyond float32: check_X names it below
        cohort = source.load()
        external = source.load_external(cohort)
    data = study.prepare(cohort)
    if cohort.meta.get("kind") != "images":
        from .._validation import check_X
        check_X(data.X, allow_nan=True)      # a value beyond float32, named by its column
    if external is not None:
        from ..experiments.runner import external_data
        external_data(study, cohort, external)          # checked before anything runs
    try:
        plan = build_plan(study, cohort, data)
    except ValueError as exc:
        if "should be greater or equal to the number of classes" not in str(exc):
            raise
        raise too_many_groups(cohort, exc) from None
    identity = study_identity(study, cohort, plan, external)
    claim = (RunDirectory(output, study.name, force_new=force_new) if output is not None
             else nullcontext())
    with claim as rd:
        store = ResultsStore(output / STORE_NAME, identity) if output is not None else None
        _describe(cohort, plan, say, rd, external)
        bar = Progress(quiet)
        try:
            if rd is not None:
                rd.write_config(identity, _data_facts(source, cohort, external))
                plan.save(output / "splits.json")
            result = run_study(study, cohort, options, store=store, progress=say, on_task=bar,
                               plan=plan, model_dir=(output / "models")
                               if output is not None and save_models else None,
                               external=external)
            result.text = header(cohort) + result.text
        except KeyboardInterrupt:
            bar.close()
            where = f"{output}/results.db" if output is not None else "nowhere (no --output)"
            typer.echo(f"interrupted: finished tasks are kept in {where}; run the same command "
                       "again to resume.", err=True)
            raise typer.Exit(code=130) from None
        finally:
            bar.close()
            if store is not None:
                store.close()
        _print(result)
        say("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
        if rd is not None:
            _write_outputs(rd, result, identity, _data_facts(source, cohort, external),
                           save_models, say)
    return result


def too_many_groups(cohort: Any, exc: Exception) -> GroupError:
    """The stratified hold-out (scikit-learn's ``test_size ... number of classes``) cannot
    give every subgroup a row in both parts: name the attribute with the most values and
    say how to group it."""
    import re
    counts = {str(c): int(cohort.groups[c].nunique()) for c in cohort.groups.columns}
    if not counts:
        return GroupError(f"the split cannot give every label a row in each part ({exc}); "
                          "use more rows.")
    worst = max(counts, key=counts.get)
    held = re.search(r"(?:test|train)_size = (\d+)", str(exc))
    part = f"a part of {held.group(1)} rows" if held else "each part"
    hints = [h for h in str(cohort.meta.get("group_hint") or "").split("; ")
             if h.startswith((f"{worst} ", f"e.g. --group {worst}:"))]
    how = (f" ({'; '.join(hints)})" if hints else
           f" (e.g. --group {worst}:CUTS:LABELS)")
    return GroupError(
        f"the group attribute {worst} has too many values for the split: "
        f"{counts[worst]} values ({cohort.subgroups.nunique()} subgroups) in {len(cohort)} "
        f"rows, and {part} of the stratified split cannot hold a row of each; group it "
        f"into fewer values (a cut for a number, fewer categories for text){how}, or use "
        "more rows.")


def _data_facts(source: DataSource, cohort: Any, external: Any) -> dict:
    out = {"data_source": source.to_dict(), "cohort_meta": cohort.meta}
    if external is not None:
        out["external_meta"] = external.meta
    return out


def header(cohort: Any) -> str:
    """The data warnings (IDs excluded, possible leaks, mostly empty columns) as the first
    lines of the printed and saved tables."""
    warnings = cohort.meta.get("warnings") or []
    return "".join(f"> warning: {w}\n" for w in warnings) + ("\n" if warnings else "")


def _describe(cohort: Any, plan: Any, say: Callable[[str], None], rd: Any,
              external: Any = None) -> None:
    for moved in (rd.moved if rd is not None else []):
        say(f"moved the old {moved.name.split('.old-')[0]} aside to {moved}")
    for w in cohort.meta.get("warnings") or []:
        say(f"warning: {w}")
    gaps = cohort.meta.get("missing_cells")
    filled = (f", {gaps} missing cells (imputed in each run from its training rows)"
              if gaps else "")
    say(f"{cohort.name}: {len(cohort)} rows, {cohort.X.shape[1]} features{filled}, subgroups "
        + ", ".join(f"{k} {v}" for k, v in cohort.subgroups.value_counts().items()))
    if external is not None:
        say(f"{external.name}: {len(external)} rows, subgroups "
            + ", ".join(f"{k} {v}" for k, v in external.subgroups.value_counts().items()))
    for sp in plan.splits:
        roles = ", ".join(f"{len(sp[r])} {r.replace('_', ' ')}" for r in
                          ("train_part", "guard", "test", "unseen") if r in sp)
        held = (f" (clusters held out: {', '.join(sp['unseen_clusters'])})"
                if "unseen_clusters" in sp else "")
        say(f"outer split {sp['outer_split']}: {roles} rows{held}")


def _write_outputs(rd: Any, result: Any, identity: dict, facts: dict,
                   save_models: bool, say: Callable[[str], None]) -> None:
    from ..datasets._fetch import sha256_of
    from ..experiments.rundir import write_text
    out = rd.path
    write_text(out / "results.csv", result.results.to_csv(index=False))
    write_text(out / "summary.csv", result.summary.to_csv(index=False))
    write_text(out / "summary.md", result.text)
    written = ["results.csv", "summary.csv"]
    if result.external_summary is not None:
        write_text(out / "summary_external.csv", result.external_summary.to_csv(index=False))
        written.append("summary_external.csv")
    for name, table in result.tables.items():
        write_text(out / name, table.to_csv(index=False))
        written.append(name)
    schema = facts["cohort_meta"].get("schema")
    if save_models and schema is not None and (out / "models").is_dir():
        write_features(out / "models", facts)
    rd.write_config(identity, {**facts, "timings_s": result.timings, "notes": result.notes,
                               "outputs_sha256": {n: sha256_of(out / n) for n in written}})
    say(f"wrote {out}/results.db, {', '.join(written)}, summary.md, config.json, "
        "splits.json" + (", models/" if save_models else ""))


FEATURES_FILE = "features.json"


def write_features(models_dir: Path, facts: dict) -> None:
    """``models/features.json``: how a new file is read and encoded for ``noharm predict``
    (reading options, target, groups, excluded columns, the feature schema)."""
    import json

    from .. import __version__
    from ..experiments.rundir import write_text
    meta = facts["cohort_meta"]
    src = facts["data_source"]
    doc = {"format": "noharm-features", "noharm_version": __version__,
           "read": meta["read"], "target": meta["target"],
           "target_expression": meta["target_expression"], "groups": list(src["group"]),
           "excluded": meta["excluded"] + meta["excluded_auto"],
           "positive_class": meta["positive_class"], "schema": meta["schema"]}
    write_text(models_dir / FEATURES_FILE, json.dumps(doc, indent=2))


def _print(result: Any) -> None:
    typer.echo(result.text)
    for note in result.notes:
        typer.echo(f"note: {note}")


def parse_list(text: Optional[str], option: Optional[str] = None,
               example: str = "") -> tuple[str, ...]:
    """The comma-separated names of ``text`` (None: the option was not given).

    Raises
    ------
    ConfigError
        With ``option``: ``text`` was given but names nothing (``--models ','``), which
        would otherwise run the defaults silently.
    """
    items = tuple(s.strip() for s in text.split(",") if s.strip()) if text else ()
    if option is not None and text is not None and not items:
        raise ConfigError(f"{option} is empty (got {text!r}); give e.g. {option} {example}"
                          f"{'' if option == '--models' else ', or leave it out'}.")
    return items


def parse_floats(text: Optional[str], name: str) -> Optional[tuple[float, ...]]:
    if not text:
        return None
    try:
        return tuple(float(w) for w in text.split(","))
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated numbers, got {text!r}.") from None
