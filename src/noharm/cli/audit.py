"""``noharm audit``: BoP of a personalized model against the generic one, per subgroup;
``noharm audit bounds``: the reliability bounds alone."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from ._data import DataSource
from ._errors import friendly
from ._options import DecimalOpt, GroupMissingOpt, PatientOpt
from ._options import (DataOpt, DataPathOpt, DatasetOpt, DropnaOpt, ExcludeOpt, GroupOpt,
                       ImputeOpt, JobsOpt, KeepOpt, NamesOpt, NaValuesOpt, NSamplesOpt,
                       QuietOpt, RandomStateOpt, SepOpt, TargetOpt)
from ._study import default_jobs, say_fn

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Audit personalization: BoP per subgroup, tests, bounds.")


def load_run(from_dir: Path, personalized: str, split: int):
    """Cohort, test rows and the two saved models of a `noharm personalize --output` DIR,
    after checking that the data and the split plan are those the models were made for."""
    from ..experiments.plan import Plan
    from ..experiments.rundir import read_config
    from ..experiments.runner import data_sha256
    from ..models import NetClassifier
    cfg = read_config(from_dir)
    if cfg is None and (from_dir / "config.json").is_file():
        raise ConfigError(f"{from_dir}/config.json is not the file noharm wrote (unreadable or "
                          "changed); rerun the study with --output to write it again.")
    if cfg is None or not (from_dir / "splits.json").is_file():
        raise ConfigError(f"{from_dir} is not the --output of `noharm personalize` (needs its "
                          "config.json and splits.json); run `noharm personalize ... --output "
                          "DIR` first.")
    if cfg.get("study") != "personalization":
        raise ConfigError(f"{from_dir} holds a {cfg.get('study')} study; the audit reads a "
                          "`noharm personalize --output DIR`.")
    plan = Plan.load(from_dir / "splits.json")
    if plan.sha256 != cfg.get("plan_sha256"):
        raise ConfigError(f"{from_dir}/splits.json is not the split plan its models were "
                          "trained with (fingerprint differs); rerun the study.")
    cohort = DataSource.from_dict(cfg.get("data_source") or {}).load()
    if data_sha256(cohort) != cfg.get("data_sha256"):
        raise ConfigError(f"the data of {from_dir} changed since the study ran (sha256 "
                          "differs: rows reordered, edited or another file); rerun the study "
                          "on this data or restore the original file.")
    if not 0 <= split < len(plan.splits):
        raise ConfigError(f"--split {split} does not exist; {from_dir} has outer splits "
                          f"0..{len(plan.splits) - 1}.")
    run_models = cfg.get("options", {}).get("models", [])
    models = []
    for name in ("generic", personalized):
        d = from_dir / "models" / name / f"split{split}"
        if name not in run_models:
            raise ConfigError(f"{from_dir} has no {name} model (its models: "
                              f"{', '.join(run_models)}); rerun with --models including {name}.")
        if not d.is_dir() and not any(d.parent.glob(f"split{split}-part*")):
            raise ConfigError(f"{d} is missing (deleted or moved; the results store does not "
                              "train finished models again): rerun the study with "
                              f"--output {from_dir} --force-new (the old files are moved "
                              "aside), or restore the folder.")
        if not d.is_dir():
            raise ConfigError(f"{from_dir} saved {name} for split {split} in parts (it had "
                              "more runs than --ensemble-size); the audit reads one ensemble "
                              f"per split: rerun with --ensemble-size "
                              f"{len(plan.runs(split))} (seeds x folds) or more.")
        models.append(NetClassifier.load(d))
    return cohort, plan.rows(split, "test"), models[0], models[1]


@app.callback(invoke_without_command=True)
@friendly
def audit(
    ctx: typer.Context,
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
    decimal: DecimalOpt = None, group_missing: GroupMissingOpt = "error",
    patient: PatientOpt = None,
    from_dir: Annotated[Optional[Path], typer.Option(
        "--from", help="Reuse the models of a `noharm personalize --output DIR`.")] = None,
    personalized: Annotated[str, typer.Option(help="hp: conditional-bias or decoupled (h0 is "
                                              "the generic model).")] = "conditional-bias",
    split: Annotated[int, typer.Option(help="Outer split whose test part is audited.")] = 0,
    method: Annotated[str, typer.Option(help="Attribution method: integrated_gradients, "
                                        "input_x_gradient, saliency, feature_ablation."
                                        )] = "integrated_gradients",
    top_frac: Annotated[float, typer.Option(help="Share of top-attributed features (r).")] = 0.4,
    baseline: Annotated[str, typer.Option(help="Value of a removed feature in the explanation "
                                          "costs: mean (the generic model's training-row "
                                          "means) or zero (raw zeros, the seed's choice)."
                                          )] = "mean",
    no_explain: Annotated[bool, typer.Option("--no-explain", help="Skip the explanation "
                                             "BoP.")] = False,
    eps: Annotated[float, typer.Option(help="Smallest benefit worth detecting.")] = 0.01,
    alpha: Annotated[float, typer.Option(help="Test level of the verdicts.")] = 0.05,
    n_boot: Annotated[int, typer.Option(help="Bootstrap replicates.")] = 1000,
    seeds: Annotated[int, typer.Option(help="Seeds (without --from).")] = 5,
    task: Annotated[str, typer.Option(help="classification or regression (without --from; "
                                      "a run's own task otherwise). Regression audits "
                                      "squared error: set --eps in target units².")
                    ] = "classification",
    folds: Annotated[int, typer.Option(help="Folds (without --from).")] = 5,
    jobs: JobsOpt = None, random_state: RandomStateOpt = 0, n_samples: NSamplesOpt = 800,
    dropna: DropnaOpt = False,
    output: Annotated[Optional[Path], typer.Option(help="Directory for audit.csv, audit.md, "
                                                   "forest.png, reliability.json.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the audit files in --output.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Audit a personalized model against the generic one, per subgroup.

    Without --from it first trains both models (seeds x folds runs on the training part
    of outer split 0) and audits their run-averaged predictions on the test part.
    """
    if ctx.invoked_subcommand is not None:
        return
    import tempfile

    from .._validation import check_choice
    from ..audit import ATTRIBUTION_METHODS, audit_models
    from ..experiments import PersonalizationStudy, RunOptions, run_study
    from ..models import NetClassifier

    check_choice(personalized, name="--personalized", choices=("conditional-bias",
                                                                "decoupled"))
    check_choice(method, name="--method", choices=tuple(ATTRIBUTION_METHODS))
    _check_output(output, overwrite)
    say = say_fn(quiet)
    if from_dir is not None:
        if dataset or data:
            raise ConfigError("--from reuses the data of that run; drop --dataset/--data.")
        cohort, test, h0, hp = load_run(from_dir, personalized, split)
    else:
        if split != 0:
            raise ConfigError("--split chooses among the outer splits of a saved run; without "
                              "--from the audit trains on outer split 0 only.")
        cohort = DataSource.pick(locals()).load()
        study = PersonalizationStudy(models=("generic", personalized), task=task, n_seeds=seeds,
                                     n_folds=folds, random_state=random_state,
                                     ensemble_size=max(25, seeds * folds), guard=False)
        with tempfile.TemporaryDirectory() as tmp:
            say(f"training generic and {personalized} on {cohort.name} ...")
            res = run_study(study, cohort, RunOptions(n_jobs=jobs or default_jobs()),
                            progress=say, model_dir=tmp)
            test = res.plan.rows(0, "test")
            h0 = NetClassifier.load(Path(tmp) / "generic" / "split0")
            hp = NetClassifier.load(Path(tmp) / personalized / "split0")
    g = cohort.subgroups.to_numpy()[test]
    result = audit_models(h0, hp, cohort.X.iloc[test], cohort.y.iloc[test], sensitive_features=g,
                          explain=not no_explain, method=method, top_frac=top_frac,
                          baseline=check_choice(baseline, name="--baseline",
                                                choices=("mean", "zero")),
                          n_boot=n_boot, alpha=alpha, eps=eps, random_state=random_state)
    _write(result, personalized, cohort.name, len(test), output, say)


def _check_output(output: Optional[Path], overwrite: bool) -> None:
    if output is None:
        return
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; give a directory.")
    if (output / "audit.csv").exists() and not overwrite:
        raise ConfigError(f"{output} already holds an audit; pass --overwrite to replace it "
                          "or choose another --output.")
    output.mkdir(parents=True, exist_ok=True)


def _write(result, personalized: str, name: str, n_test: int, output: Optional[Path],
           say) -> None:
    from ..report import forest_plot, markdown_table
    shown = result.table.copy()
    for c in ("cost_h0", "cost_hp"):
        shown[c] = shown[c].map("{:.3f}".format)
    for c in ("bop", "ci_low", "ci_high"):
        shown[c] = shown[c].map("{:+.3f}".format)
    shown["p_value"] = shown["p_value"].map(lambda v: "–" if v != v else f"{v:.3g}")
    text = (f"## Audit: {personalized} (hp) vs generic (h0) on {name}, {n_test} test rows\n\n"
            + markdown_table(shown) + "\n\n" + "\n".join(result.summary_lines()) + "\n")
    typer.echo(text)
    if output is None:
        return
    result.table.to_csv(output / "audit.csv", index=False)
    (output / "audit.md").write_text(text)
    import datetime as _dt

    from .. import __version__
    from ..experiments.rundir import command_line
    audit = {"personalized": personalized, "reference": "generic", "data": name,
             "n_test": n_test, "command": command_line(),
             "noharm_version": __version__,
             "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    (output / "reliability.json").write_text(json.dumps(
        {"reliability": result.reliability, "family": result.family, "audit": audit},
        indent=2, default=str))
    forest_plot(result.table, output / "forest.png",
                title=f"BoP of {personalized} vs generic ({name})")
    say(f"wrote {output}/audit.csv, audit.md, reliability.json, forest.png")


@app.command("bounds")
@friendly
def audit_bounds(
    n: Annotated[float, typer.Option(help="Rows of the dataset (e.g. 8e9).")],
    eps: Annotated[float, typer.Option(help="Smallest benefit worth detecting.")] = 0.01,
    sigma: Annotated[Optional[float], typer.Option(help="sd of a Gaussian BoP.")] = None,
    laplace_b: Annotated[Optional[float], typer.Option(help="Scale of a Laplace BoP.")] = None,
    k: Annotated[Optional[int], typer.Option(help="Show k = 1..K attributes.")] = None,
) -> None:
    """Lower bound on the error of any BoP test for k = 1..K attributes, and k_max."""
    from ..audit.bounds import bounds_rows
    if k is not None and k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}.")
    rows, kmax = bounds_rows(n, eps, sigma=sigma, laplace_b=laplace_b,
                             k_values=range(1, k + 1) if k else None)
    fams = list(dict.fromkeys(r["family"] for r in rows))
    by_k: dict[int, dict[str, float]] = {}
    for r in rows:
        by_k.setdefault(r["k"], {})[r["family"]] = r["pe_lower_bound"]
    typer.echo(f"## P_e lower bound, n = {n:g}, eps = {eps:g} (equal groups)\n")
    typer.echo("| k | groups | " + " | ".join(fams) + " |")
    typer.echo("|---|---|" + "---|" * len(fams))
    for kk, pe in by_k.items():
        groups = str(2 ** kk) if kk <= 30 else f"2^{kk}"
        typer.echo(f"| {kk} | {groups} | " + " | ".join(f"{pe[f]:.4f}" for f in fams) + " |")
    typer.echo("")
    for fam, v in kmax.items():
        typer.echo(f"k_max ({fam}) = {v:.2f}: at most {int(v)} binary attributes can be "
                   "validated")


from .fair_use import FAIR_USE_EX, fair_use  # noqa: E402  (a subcommand in its own module)

app.command("fair-use", epilog=FAIR_USE_EX)(friendly(fair_use))
