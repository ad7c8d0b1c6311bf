"""``noharm audit fair-use``: does each group gain from giving its attribute to the model?
(blind vs aware forms of each model family; :class:`noharm.audit.fair_use.FairUseAudit`)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ConfigError
from ._data import DataSource
from ._errors import friendly
from ._options import DecimalOpt, GroupMissingOpt, PatientOpt
from ._options import (DataOpt, DataPathOpt, DatasetOpt, DropnaOpt, ExcludeOpt, GroupOpt,
                       ImputeOpt, KeepOpt, NamesOpt, NaValuesOpt, NSamplesOpt, QuietOpt,
                       RandomStateOpt, SepOpt, TargetOpt)
from ._study import say_fn

FAMILIES = ("logreg", "hgb", "generic")
REGRESSION_FAMILIES = ("linreg", "hgb", "generic")
FAIR_USE_EX = """Examples:

  noharm audit fair-use --dataset heart

  noharm audit fair-use --dataset diabetes130 --attributes race,age --proxy age_years

  noharm audit fair-use --data my.csv --target outcome --group age:60 --group sex \\
      --encoding onehot --families logreg,hgb,generic --output audits/fair-use
"""
FILES = ("fair_use.csv", "envy.csv", "fair_use_summary.csv", "fair_use.md", "fair_use.png")


def _split(text: str, name: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{name} is empty; give e.g. {name} logreg,hgb.")
    return items


def _families(names: list[str], random_state: int, task: str) -> dict:
    from ..models import GenericClassifier, GenericRegressor, ReferenceClassifier
    from ..models.regression import ReferenceRegressor
    known = REGRESSION_FAMILIES if task == "regression" else FAMILIES
    out = {}
    for f in names:
        if f not in known:
            raise ConfigError(f"--families: unknown family {f!r} for {task}; choose from "
                              f"{', '.join(known)}.")
        if task == "regression":
            out[f] = (GenericRegressor(random_state=random_state) if f == "generic" else
                      ReferenceRegressor(f, random_state=random_state))
        else:
            out[f] = (GenericClassifier(random_state=random_state) if f == "generic" else
                      ReferenceClassifier(f, random_state=random_state))
    return out


def fair_use(
    dataset: DatasetOpt = None, data: DataOpt = None, target: TargetOpt = None,
    group: GroupOpt = None, data_path: DataPathOpt = None,
    sep: SepOpt = None, names: NamesOpt = None, na_values: NaValuesOpt = None,
    exclude: ExcludeOpt = None, keep: KeepOpt = None, impute: ImputeOpt = "median",
    decimal: DecimalOpt = None, group_missing: GroupMissingOpt = "error",
    patient: PatientOpt = None,
    dropna: DropnaOpt = False, n_samples: NSamplesOpt = 800,
    attributes: Annotated[Optional[str], typer.Option(
        help="Comma-separated group attributes to audit (default: all), e.g. race,age.")
    ] = None,
    families: Annotated[Optional[str], typer.Option(
        help="Model families, each fitted blind and aware: logreg, hgb, generic (MLP); "
        "with --task regression linreg, hgb, generic. Default: logreg,hgb (linreg,hgb).")
    ] = None,
    task: Annotated[str, typer.Option(
        help="classification (binary target, log-loss) or regression (numeric target, "
        "squared error).")] = "classification",
    encoding: Annotated[str, typer.Option(
        help="How the aware form is told the group: intersectional (one input per "
        "subgroup) or onehot (one per level of each attribute).")] = "intersectional",
    proxy: Annotated[Optional[list[str]], typer.Option(
        help="A column standing in for an attribute (e.g. age_years for age), removed "
        "from both forms like the group columns. Repeatable or comma-separated.")] = None,
    audit_size: Annotated[float, typer.Option(
        help="Share of the rows held out as audit rows (no model sees them).")] = 0.3,
    alpha: Annotated[float, typer.Option(help="Family-wise error level (Holm).")] = 0.05,
    min_n: Annotated[int, typer.Option(
        help="Groups with fewer audit units are not tested.")] = 20,
    no_explain: Annotated[bool, typer.Option(
        "--no-explain", help="Skip the explanation BoP (sufficiency, "
        "incomprehensiveness).")] = False,
    eps: Annotated[float, typer.Option(
        help="Smallest benefit worth detecting (log-loss, or squared error with --task "
        "regression), for k_max.")] = 0.01,
    random_state: RandomStateOpt = 0,
    output: Annotated[Optional[Path], typer.Option(
        help="Directory for fair_use.csv, envy.csv, fair_use_summary.csv, fair_use.md and "
        "fair_use.png.")] = None,
    overwrite: Annotated[bool, typer.Option(
        help="Replace the fair-use files in --output.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Fair use of group attributes: per group, does the aware form of each model family
    beat its blind form (rationality), and would the group do better claiming another
    group's attribute (envy)?"""
    from ..audit.fair_use import FairUseAudit
    say = say_fn(quiet)
    from .._validation import check_choice
    check_choice(task, name="--task", choices=("classification", "regression"))
    if not eps > 0:
        raise ConfigError(f"--eps must be a number > 0 (the smallest benefit worth "
                          f"detecting), got {eps}.")
    default = "linreg,hgb" if task == "regression" else "logreg,hgb"
    fams = _families(_split(families or default, "--families"), random_state, task)
    proxies = [p for item in (proxy or []) for p in _split(item, "--proxy")]
    if output is not None:
        _check_output(output, overwrite)
    source = DataSource.pick({k: v for k, v in locals().items()
                              if k in DataSource.__dataclass_fields__})
    cohort = source.load()
    attrs = cohort.groups
    if attributes:
        chosen = _split(attributes, "--attributes")
        unknown = [a for a in chosen if a not in attrs.columns]
        if unknown:
            raise ConfigError(f"--attributes {unknown} are not group attributes of "
                              f"{cohort.name} (it has {list(attrs.columns)}).")
        attrs = attrs[chosen]
    from ..models.forms import attribute_columns
    group_columns = attribute_columns(cohort.X, list(attrs.columns))
    missing = [p for p in proxies if p not in cohort.X.columns]
    if missing:
        raise ConfigError(f"--proxy {missing} are not feature columns of {cohort.name}.")
    look_alike = [c for c in cohort.X.columns if c not in group_columns + proxies and any(
        str(c).lower().startswith(f"{a.lower()}_") for a in attrs.columns)]
    if look_alike:
        say(f"note: column(s) {look_alike[:5]} look like group attributes and stay in both "
            "forms; --proxy COL removes one.")
    audit = FairUseAudit(fams, group_columns=tuple(group_columns), proxies=tuple(proxies),
                         encoding=encoding, task=task, audit_size=audit_size, alpha=alpha,
                         min_units=min_n, explain=not no_explain,
                         random_state=random_state)
    say(f"fair use on {cohort.name}: {len(cohort)} rows, attributes {list(attrs.columns)}, "
        f"families {list(fams)}; removed from both forms: {group_columns + proxies or 'none'}")
    audit.fit(cohort.X, cohort.y, sensitive_features=attrs,
              patient_ids=None if cohort.split_by is None else cohort.split_by.to_numpy())
    text = render(audit, cohort, attrs, eps)
    typer.echo(text)
    if output is not None:
        _write(audit, text, output, cohort.name)
        say(f"wrote {output}/" + ", ".join(FILES))


def render(audit, cohort, attrs, eps: float) -> str:
    """The terminal table: per family and group, BoP [CI], the verdicts, gamma, k_max."""
    from ..audit.bounds import chi2_per_sample, fit_bop_family, k_max
    s = audit.summary_
    import textwrap
    loss = "squared error" if audit.task == "regression" else "log-loss x 100"
    scale = 1 if audit.task == "regression" else 100
    legend = (f"BoP = blind minus aware {loss} on the audit rows (> 0: the group "
              "gains from giving its attribute); rationality: the aware form significantly "
              "better (holds) or worse (violated) for the group, Holm over families x "
              "groups; vs every blind: better than every blind model; envy: the group does "
              f"significantly better told another group's attribute. Groups with fewer than "
              f"{audit.min_units} audit units are not tested (cannot tell).")
    lines = [f"## Fair use of {', '.join(attrs.columns)} on {cohort.name}: "
             f"{len(audit.audit_rows_)} audit rows", "", textwrap.fill(legend, 96), "", "```",
             f"{'family':8s} {'group':24s} {'n':>5s} {'BoP [95 % CI]':>22s}  "
             f"{'rationality':11s}  {'vs every blind':14s}  envy"]
    for _, r in s.iterrows():
        f = ".1f" if scale == 100 else ".2f"
        bop = ("–" if r["bop"] != r["bop"] else
               f"{scale * r['bop']:+{f}} [{scale * r['ci_low']:+{f}}, "
               f"{scale * r['ci_high']:+{f}}]")
        lines.append(f"{r['family']:8s} {str(r['group'])[:24]:24s} {int(r['n']):5d} "
                     f"{bop:>22s}  {r['rationality']:11s}  {r['vs_every_blind']:14s}  "
                     f"{r['envy']}")
    lines.append("```")
    lines.append("")
    expl = audit.rationality_[audit.rationality_["metric"].isin(
        ("sufficiency", "incomprehensiveness"))]
    if len(expl):
        lines += [textwrap.fill(f"Explanation BoP x 100 (blind minus aware cost of the top "
                                f"{audit.top_frac:.0%} features by feature ablation; > 0: "
                                "the aware form's explanations are better):", 96), "", "```",
                  f"{'family':8s} {'group':24s} {'sufficiency':>24s}  "
                  f"{'incomprehensiveness':>24s}"]
        for (fam, grp), d in expl.groupby(["family", "group"], sort=False):
            cell = {r["metric"]: f"{100 * r['bop']:+.1f} {r['verdict']}"
                    for _, r in d.iterrows()}
            lines.append(f"{fam:8s} {str(grp)[:24]:24s} {cell.get('sufficiency', '–'):>24s}  "
                         f"{cell.get('incomprehensiveness', '–'):>24s}")
        lines += ["```", ""]
    for _, g in audit.gamma_.iterrows():
        if g["gamma"] != g["gamma"]:
            lines.append(f"{g['family']}: minimal group BoP not estimable (no group has "
                         f"{audit.min_units} audit units).")
            continue
        ci = ("" if g["ci_low"] != g["ci_low"] else
              f" [{scale * g['ci_low']:+.2f}, {scale * g['ci_high']:+.2f}]")
        lines.append(f"{g['family']}: minimal group BoP gamma = {scale * g['gamma']:+.2f}{ci} "
                     f"({g['of_group']}, over the tested groups); H0 gamma <= 0: "
                     f"p = {g['p_value']:.3g} ({g['verdict']})")
    fam = next(iter(audit.blind_))
    rows = audit.audit_rows_
    values = audit.individual_bop(cohort.X.iloc[rows], cohort.y.iloc[rows],
                                  sensitive_features=attrs.iloc[rows], family=fam)
    fit = fit_bop_family(values)
    c = chi2_per_sample(eps, fit["family"], sigma=fit.get("sigma"),
                        laplace_b=fit.get("laplace_b"))
    lines.append(f"BoP distribution ({fam}, per audit row): {fit['family']}; with "
                 f"{len(rows)} audit rows at most k_max = {k_max(len(rows), c):.1f} binary")
    lines.append(f"attributes can be validated at eps = {eps:g} (seed 001, section 5).")
    return "\n".join(lines) + "\n"


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; give a directory.")
    there = [f for f in FILES if (output / f).exists()]
    if there and not overwrite:
        raise ConfigError(f"{output} already holds {', '.join(there)}; pass --overwrite to "
                          "replace them or choose another --output.")
    output.mkdir(parents=True, exist_ok=True)


def _write(audit, text: str, output: Path, name: str) -> None:
    audit.rationality_.to_csv(output / "fair_use.csv", index=False)
    audit.envy_.to_csv(output / "envy.csv", index=False)
    audit.summary_.to_csv(output / "fair_use_summary.csv", index=False)
    (output / "fair_use.md").write_text(text)
    plot(audit, output / "fair_use.png", name)


def plot(audit, path: Path, name: str) -> None:
    """Per group: the BoP with its interval per family, and the largest envy gap."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    s = audit.summary_
    k100 = 1 if audit.task == "regression" else 100
    groups = list(dict.fromkeys(s["group"]))
    fams = list(dict.fromkeys(s["family"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.45 * len(groups) + 1.6), sharey=True)
    for k, fam in enumerate(fams):
        d = s[s["family"] == fam].set_index("group").reindex(groups)
        yy = np.arange(len(groups)) + (k - (len(fams) - 1) / 2) * 0.2
        err = np.vstack([d["bop"] - d["ci_low"], d["ci_high"] - d["bop"]]) * k100
        axes[0].errorbar(k100 * d["bop"], yy, xerr=err, fmt="o", capsize=3, label=fam)
        axes[1].plot(k100 * d["envy_gap"], yy, "s", label=fam)
    unit = "squared error" if k100 == 1 else "log-loss) x 100"
    for ax, title in zip(axes, (f"BoP (blind - aware {unit}, 95 % CI".replace(
                                    "error,", "error),"),
                                f"largest envy gap{'' if k100 == 1 else ' x 100'} "
                                "(> 0: envy)")):
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=9)
    axes[0].set_yticks(range(len(groups)), groups)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Fair use of group attributes: {name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
