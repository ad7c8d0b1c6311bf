"""One self-contained HTML report of an output directory (``noharm report DIR``).

It reads what the commands wrote there and shows what exists:

* ``summary.csv`` (``noharm personalize``): accuracy / gain tables, per-group accuracy
  with error bars per model, a forest plot of each model's gain against the reference,
  the guard's certificate of every outer split (from ``results.csv``) and the fairness
  gaps (MSE tables for a regression study);
* ``audit.csv`` (``noharm audit``): the BoP table and a forest plot coloured by verdict;
* a ``noharm debias`` directory: the method table and the bias-vs-balanced-accuracy
  scatter;
* any other ``*.md`` result (e.g. the FairGrad comparison) as its tables.

Images are embedded as base64 PNG, the style sheet is inline, and there is no
script: the file opens anywhere, offline.
"""
from __future__ import annotations

import base64
import html
import io
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..errors import ConfigError
from .plots import bias_scatter, forest_plot
from .tables import (LABELS, accuracy_table, certificate_split_table, gap_change_table,
                     models_of, regression_table, secondary_table)

# Tables never outgrow the page: they shrink to the text column (cells wrap at spaces,
# never inside an interval), wide tables are split by columns, and a table sits in a
# horizontally scrolling box as a last resort.
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1.0em;margin-top:1.4em}
.tw{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.8em;max-width:100%}
th,td{border:1px solid #ccc;padding:2px 6px;text-align:right;overflow-wrap:break-word}
th{background:#f3f3f3;vertical-align:bottom;font-weight:600}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
.note{color:#555;font-size:0.85em;max-width:100%}
"""
_HEAD = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
#: the generator tag of every report: ``write_report`` replaces only files that carry it
GENERATOR = "noharm report"


def _png(fig) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return _img(buf.getvalue(), "figure")


def _img(data: bytes, alt: str) -> str:
    return (f'<img alt="{html.escape(alt)}" src="data:image/png;base64,'
            f'{base64.b64encode(data).decode()}">')


def _file_img(draw, alt: str) -> str:
    """Run a plot function that writes a PNG file and embed the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plot.png"
        draw(path)
        return _img(path.read_bytes(), alt)


_INTERVAL = re.compile(r"\[([^\]\s]*), ([^\]\s]*)\]")


def _keep_intervals(v):
    """A cell's ``[low, high]`` with a no-break space: cells wrap between a value, its
    interval and its verdict, not inside the interval."""
    return _INTERVAL.sub("[\\1,\u00a0\\2]", v) if isinstance(v, str) else v


def _table(df: pd.DataFrame, cls: str | None = None) -> str:
    """``df`` as an HTML table in a box that scrolls sideways if it ever must."""
    df = df.apply(lambda col: col.map(_keep_intervals)) if len(df) else df
    return ('<div class="tw">' + df.to_html(index=False, escape=True, border=0, na_rep="–",
                                             float_format=lambda v: f"{v:.3f}",
                                             classes=cls) + "</div>")


def _gain_columns(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """An :func:`accuracy_table` as two tables that fit the page: the metric per model,
    and the gains against the reference (None without gains)."""
    gains = [c for c in table.columns if str(c).startswith("gain ")]
    keep = [c for c in table.columns if c not in gains]
    if not gains:
        return table, None
    return table[keep], table[["subgroup", *gains]]


def _accuracy_tables(table: pd.DataFrame, what: str) -> str:
    acc, gain = _gain_columns(table)
    out = f"<h3>{html.escape(what)}: mean ± sd over runs</h3>" + _table(acc)
    if gain is not None:
        out += ("<h3>Gain over the reference, 95 % interval and verdict (Holm)</h3>"
                + _table(gain))
    return out


#: one colour per model in every plot (tab10 indices)
_MODEL_ORDER = ("generic", "decoupled", "conditional-bias", "logreg", "hgb", "reference",
                "guarded", "fairgrad", "medl", "fair-medl")


def model_color(model: str):
    """The model's colour, the same in every figure."""
    import matplotlib.pyplot as plt
    i = _MODEL_ORDER.index(model) if model in _MODEL_ORDER else \
        len(_MODEL_ORDER) + sum(map(ord, model))
    return plt.get_cmap("tab10")(i % 10)


def accuracy_figure(summary: pd.DataFrame) -> str:
    """Per-subgroup accuracy of every model (mean over runs; bars ± 1 sd over runs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    acc = summary[summary["metric"] == "accuracy"]
    groups = list(dict.fromkeys(acc["subgroup"]))
    models = models_of(acc)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * max(1, len(models)) / 2), 4))
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        d = acc[acc["model"] == m].set_index("subgroup").reindex(groups)
        x = np.arange(len(groups)) + (i - (len(models) - 1) / 2) * width
        ax.bar(x, 100 * d["mean"], width, label=LABELS.get(m, m), color=model_color(m),
               yerr=100 * d["sd"].fillna(0).to_numpy(), capsize=2)
    ax.set_xticks(np.arange(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(max(0, 100 * acc["mean"].min() - 25), 100)
    ax.set_title("Accuracy per subgroup (mean ± sd over runs)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def reliability_figure(table: pd.DataFrame) -> str:
    """Reliability diagrams from ``calibration.csv``: one panel per subgroup (all rows
    first), one line per model (observed rate against mean predicted probability per bin,
    marker area ~ rows), the diagonal = perfect calibration."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    groups = ["all"] + [g for g in dict.fromkeys(table["subgroup"]) if g != "all"]
    groups = [g for g in groups if (table["subgroup"] == g).any()]
    cols = min(4, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 3.0 * rows), squeeze=False,
                             sharex=True, sharey=True)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    for ax, g in zip(axes.ravel(), groups):
        ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--")
        for model, d in table[table["subgroup"] == g].groupby("model", sort=False):
            d = d.sort_values("bin")
            ax.plot(d["mean_predicted"], d["observed_rate"], "-", color=model_color(model),
                    lw=1.2, label=model)
            ax.scatter(d["mean_predicted"], d["observed_rate"], s=8 + 60 * d["n"] /
                       max(1, d["n"].max()), color=model_color(model))
        ax.set_title(g, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("observed rate of Y = 1", fontsize=8)
    axes[-1, 0].set_xlabel("mean predicted probability", fontsize=8)
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return _png(fig).replace('alt="figure"', 'alt="reliability diagram"', 1)


def gain_figure(summary: pd.DataFrame) -> str | None:
    """Forest plot of each model's accuracy gain over the reference, per subgroup, with
    the summary's 95 % intervals."""
    d = summary[(summary["metric"] == "accuracy") & summary["gain"].notna()]
    if d.empty:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    models = models_of(d)
    groups = list(dict.fromkeys(d["subgroup"]))
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(groups) * len(models) + 1.5))
    for i, m in enumerate(models):
        dm = d[d["model"] == m].set_index("subgroup").reindex(groups)
        err = np.vstack([dm["gain"] - dm["gain_ci_low"], dm["gain_ci_high"] - dm["gain"]])
        y = np.arange(len(groups)) + i * 0.8 / len(models)
        ax.errorbar(100 * dm["gain"], y, xerr=100 * np.nan_to_num(err), fmt="o",
                    capsize=3, label=LABELS.get(m, m), color=model_color(m))
    ax.axvline(0, color="black", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(groups)) + 0.4 * (len(models) - 1) / len(models))
    ax.set_yticklabels(groups, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy gain over the reference (points; > 0 helps)")
    ax.set_title("Gain against the reference (95 % intervals)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _markdown_tables(text: str) -> list[str]:
    """The pipe tables of a Markdown file as HTML tables (headings kept as h3)."""
    out, rows = [], []

    def flush() -> None:
        if len(rows) >= 2:
            head, body = rows[0], [r for r in rows[2:]]
            out.append('<div class="tw"><table><thead><tr>'
                       + "".join(f"<th>{html.escape(c)}</th>" for c in head)
                       + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r)
                                 + "</tr>" for r in body) + "</tbody></table></div>")
        rows.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        flush()
        if line.startswith("#"):
            out.append(f"<h3>{html.escape(line.lstrip('#').strip())}</h3>")
        elif line.strip():
            out.append(f'<p class="note">{html.escape(line)}</p>')
    flush()
    return out


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV of a run directory; an empty or unreadable one is a one-line error."""
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is empty or not a CSV noharm wrote ({exc}); rerun the "
                          "command that writes it or remove the file.") from None


def check_fingerprints(d: Path) -> str | None:
    """The study of a noharm run directory, after checking that its split plan and output
    files are those its config.json recorded (None for a directory of other outputs)."""
    from ..experiments.plan import Plan
    from ..datasets._fetch import sha256_of
    from ..experiments.rundir import read_config
    cfg = read_config(d)
    if cfg is None:
        return None
    if "plan_sha256" in cfg:
        if not (d / "splits.json").is_file():
            raise ConfigError(f"{d} lacks splits.json, which its config.json records; rerun "
                              "the study into a new directory.")
        if Plan.load(d / "splits.json").sha256 != cfg["plan_sha256"]:
            raise ConfigError(f"{d}/splits.json is not the split plan its config.json "
                              "records; rerun the study into a new directory.")
    for name, sha in (cfg.get("outputs_sha256") or {}).items():
        if not (d / name).is_file() or sha256_of(d / name) != sha:
            raise ConfigError(f"{d}/{name} is not the file the {cfg.get('study')} study wrote "
                              "(missing or changed since); rerun the study or restore it.")
    return cfg.get("study")


def _run_header(d: Path) -> list[str]:
    """What produced the results: command, noharm version, date, data and, for an audit,
    the audited model."""
    import json

    from ..experiments.rundir import read_config
    rows = []
    cfg = read_config(d)
    if cfg is not None:
        rows += [("study", cfg.get("study")), ("command", cfg.get("command")),
                 ("noharm version", cfg.get("noharm_version")), ("date", cfg.get("date")),
                 ("data", f"{cfg.get('cohort')} (sha256 {str(cfg.get('data_sha256'))[:12]})")]
        for w in (cfg.get("cohort_meta") or {}).get("warnings") or []:
            rows.append(("data warning", w))
    rel = d / "reliability.json"
    if rel.is_file():
        try:
            audit = json.loads(rel.read_text()).get("audit") or {}
        except json.JSONDecodeError:
            audit = {}
        if audit:
            rows += [("audited model", f"{audit.get('personalized')} (hp) against "
                      f"{audit.get('reference', 'generic')} (h0) on {audit.get('data')}, "
                      f"{audit.get('n_test')} test rows"),
                     ("audit command", audit.get("command")),
                     ("audit version", audit.get("noharm_version")),
                     ("audit date", audit.get("date"))]
    if not rows:
        return []
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in rows if v is not None)
    return [f'<h2>Run</h2><div class="tw"><table class="run">{body}</table></div>']


def _fair_use_section(d: Path, summary: pd.DataFrame) -> list[str]:
    """The `noharm audit fair-use --output DIR` section: per family and group the BoP with
    its interval and the verdicts, the figure, and the gamma / k_max lines."""
    shown = summary.copy()
    for c in ("bop", "ci_low", "ci_high", "envy_gap"):
        if c in shown:
            shown[c] = shown[c].map(lambda v: "–" if v != v else f"{v:+.4f}")
    out = ["<h2>Fair use of group attributes (blind vs aware forms)</h2>",
           '<p class="note">BoP = blind minus aware cost on held-out audit rows (> 0: the '
           "group gains from giving its attribute); rationality holds / is violated when the "
           "aware form is significantly better / worse for the group (Holm); envy: the group "
           "does significantly better told another group's attribute.</p>", _table(shown)]
    if (d / "fair_use.png").is_file():
        out.append(_img((d / "fair_use.png").read_bytes(), "fair-use BoP and envy gaps"))
    md = d / "fair_use.md"
    if md.is_file():
        out += [f'<p class="note">{html.escape(ln)}</p>' for ln in md.read_text().splitlines()
                if ln.startswith(("logreg:", "hgb:", "generic:", "linreg:", "BoP distribution",
                                  "attributes can be validated"))]
    return out


def render_report(directory: str | Path, title: str | None = None) -> str:
    """The HTML text of the report of ``directory``.

    Raises
    ------
    ConfigError
        ``directory`` does not exist or holds no noharm results.
    """
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d} is not a directory; give the --output DIR of a noharm command.")
    study = check_fingerprints(d)
    parts: list[str] = []
    used: set[str] = set()
    summary_file = d / "summary.csv"
    if summary_file.is_file():
        summary = _read_csv(summary_file)
        if {"subgroup", "model", "metric", "gain", "verdict"} <= set(summary.columns):
            used |= {"summary.md"}
            parts.append("<h2>Personalization study</h2>")
            metric = "mse" if (summary["metric"] == "mse").any() else "accuracy"
            if metric == "accuracy":
                parts.append(_accuracy_tables(accuracy_table(summary), "Accuracy (%)"))
                parts.append(accuracy_figure(summary))
                gain = gain_figure(summary)
                if gain:
                    parts.append(gain)
                parts.append("<h3>AUROC, balanced accuracy, ECE (%) and Brier score (x 100)"
                             "</h3>" + _table(secondary_table(summary)))
            else:                                    # a regression study
                parts.append(_accuracy_tables(accuracy_table(summary, "mse"),
                                              "Mean squared error (target units²)"))
                parts.append("<h3>Mean absolute error and R², mean ± sd over runs</h3>"
                             + _table(regression_table(summary)))
            cal_file = d / "calibration.csv"
            if cal_file.is_file():
                used |= {"calibration.csv"}
                parts.append("<h3>Reliability diagrams (test rows of every run, 10 "
                             "equal-width bins)</h3>" + reliability_figure(_read_csv(cal_file)))
            res_file = d / "results.csv"
            guard = _read_csv(res_file) if res_file.is_file() else pd.DataFrame()
            if "role" in guard and (guard["role"] == "guard").any():
                parts.append(
                    "<h3>Guard: deployed model per subgroup and its certificate</h3>"
                    '<p class="note">Per outer split, on its guard rows (n: rows or '
                    "patients): effect = the guard loss of the generic model the candidate "
                    "was tested against (vs: the binding one of the references) minus the "
                    "candidate's "
                    "(> 0: personalization helps; where the reference is kept, the most "
                    "promising candidate's), its 95 % interval, one-sided p-value, Holm's "
                    "adjustment over subgroups x candidates and the smallest effect the guard "
                    "n could detect (MDE); then the guarded model's test gain over the "
                    "reference (per split: mean paired difference; over all splits: the "
                    "summary's interval and verdict).</p>"
                    + _table(certificate_split_table(guard[guard["role"] == "guard"],
                                                     summary, guard, metric)))
            gaps = gap_change_table(summary)
            if len(gaps):
                parts.append("<h3>Fairness gaps between each attribute's groups (points, "
                             "mean over runs) and the guarded model's change against the "
                             "reference (negative: a smaller gap)</h3>" + _table(gaps))
            ext_file = d / "summary_external.csv"
            if ext_file.is_file():
                ext = _read_csv(ext_file)
                used |= {"summary_external.csv"}
                what = "accuracy (%)" if metric == "accuracy" else "mean squared error"
                parts.append(_accuracy_tables(
                    accuracy_table(ext, metric), f"External validation (--test-data): {what} "
                    "on the external rows, bootstrap intervals over them"))
    audit_file = d / "audit.csv"
    if audit_file.is_file():
        audit = _read_csv(audit_file)
        used |= {"audit.md"}
        parts.append("<h2>Audit: benefit of personalization</h2>" + _table(audit))
        parts.append(_file_img(lambda p: forest_plot(audit, p), "BoP forest plot"))
        if (d / "audit.md").is_file():
            notes = [ln for ln in (d / "audit.md").read_text().splitlines()
                     if ln.strip() and not ln.startswith(("|", "#"))]
            parts += [f'<p class="note">{html.escape(n)}</p>' for n in notes]
    fair_file = d / "fair_use_summary.csv"
    if fair_file.is_file():
        parts += _fair_use_section(d, _read_csv(fair_file))
        used |= {"fair_use.md"}
    if study == "debias" and (d / "results.csv").is_file():
        res = _read_csv(d / "results.csv")
        deb = res.pivot_table(index=["model", "outer_split"], columns="metric",
                              values="value").reset_index().rename(columns={"model": "method"})
        parts.append("<h2>Debiasing</h2>")
        parts += _markdown_tables((d / "summary.md").read_text())
        used |= {"summary.md"}
        parts.append(_file_img(lambda p: bias_scatter(deb, p), "bias vs balanced accuracy"))
    debias_file = d / "debias.csv"
    if debias_file.is_file():
        deb = _read_csv(debias_file)
        used |= {"debias.md"}
        parts.append("<h2>Debiasing</h2>")
        if (d / "debias.md").is_file():
            parts += _markdown_tables((d / "debias.md").read_text())
        parts.append(_file_img(lambda p: bias_scatter(deb, p), "bias vs balanced accuracy"))
    for md in sorted(d.glob("*.md")):
        if md.name not in used:
            parts.append(f"<h2>{html.escape(md.stem)}</h2>")
            parts += _markdown_tables(md.read_text())
    if not parts:
        raise ConfigError(f"{d} holds no noharm results (summary.csv, audit.csv, debias.csv, "
                          "fair_use_summary.csv or *.md); run `noharm personalize/fairness/"
                          "mixed/debias/audit --output DIR` first.")
    parts = _run_header(d) + parts
    title = title or f"noharm report: {d.name}"
    return (f"{_HEAD}<meta name=\"generator\" content=\"{GENERATOR} {__version__}\">"
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>" + "\n".join(parts) + "</body></html>\n")


def written_by_noharm(path: str | Path) -> bool:
    """Whether the file ``path`` is a report noharm wrote (its generator tag, or the
    head and style sheet of a report of an older noharm): only such a file is replaced."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(_HEAD) and (f'<meta name="generator" content="{GENERATOR} ' in head
                                       or f"<style>{_CSS[:200]}" in head)


def write_report(directory: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``directory`` to ``out`` (default ``directory/report.html``).

    Raises
    ------
    ConfigError
        ``directory`` holds no noharm results, or ``out`` is a file noharm did not write
        (a user's file is never replaced).
    """
    from ..experiments.rundir import write_text
    path = Path(out) if out is not None else Path(directory) / "report.html"
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a file name such as report.html "
                          "(--out).")
    if path.exists() and not written_by_noharm(path):
        raise ConfigError(f"{path} exists and is not a report noharm wrote; it is left as it "
                          f"is: give --out another path, or delete {path} yourself.")
    text = render_report(directory)
    write_text(path, text)
    return path
