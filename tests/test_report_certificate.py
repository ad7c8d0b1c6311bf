"""The short terminal report (the guard's certificate and a compact accuracy table) and
the HTML report's certificate and fairness-gap tables, from small hand-made summary and
results frames (no model is fitted)."""
from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
from conftest import CHROMIUM, needs_browser

from noharm.report import markdown_report
from noharm.report.html import render_report
from noharm.report.tables import WIDTH, certificate_records, certificate_table

SUBGROUPS = ("old_female", "old_male", "young_female", "young_male")
MODELS = ("generic", "decoupled", "conditional-bias", "logreg", "hgb", "reference", "guarded")
COLUMNS = ["subgroup", "model", "metric", "n_test", "mean", "sd", "reference", "gain",
           "gain_ci_low", "gain_ci_high", "p_value", "p_holm", "verdict"]

#: the guard's numbers per subgroup in every outer split (old_female's effect varies)
GUARD = {"old_female": dict(n=31, deployed="decoupled", effect=0.0456, ci_low=0.0123,
                            ci_high=0.0789, p_value=0.001, p_holm=0.004, detectable=0.0321),
         "old_male": dict(n=41, deployed="hgb", effect=-0.071, ci_low=-0.408,
                          ci_high=0.266, p_value=0.66, p_holm=1.0, detectable=0.58),
         "young_female": dict(n=46, deployed="conditional-bias", effect=0.12, ci_low=0.05,
                              ci_high=0.19, p_value=0.0001, p_holm=0.0004,
                              detectable=0.263),
         "young_male": dict(n=1190, deployed="hgb", effect=-0.259, ci_low=-0.388,
                            ci_high=-0.129, p_value=0.9999, p_holm=1.0, detectable=0.222)}

#: the guarded model's test accuracy gain over the reference (summary.csv)
GAINS = {"old_female": (0.05, 0.01, 0.09, 0.01, 0.04, "helps"),
         "old_male": (0.0, 0.0, 0.0, 1.0, 1.0, "cannot tell"),
         "young_female": (-0.123, -0.456, 0.111, 0.3, 0.9, "cannot tell"),
         "young_male": (0.0, 0.0, 0.0, 1.0, 1.0, "cannot tell"),
         "all": (0.0123, -0.005, 0.03, 0.2, 0.8, "cannot tell")}


def _summary(metric: str = "accuracy", scale: float = 1.0) -> pd.DataFrame:
    rows = []
    for s_i, sub in enumerate([*SUBGROUPS, "all"]):
        for m_i, model in enumerate(MODELS):
            row = {"subgroup": sub, "model": model, "metric": metric,
                   "n_test": 60.0 if sub == "all" else 8.0 + s_i,
                   "mean": scale * (0.5 + 0.01 * m_i + 0.001 * s_i), "sd": 0.1,
                   "reference": "reference", "gain": np.nan, "gain_ci_low": np.nan,
                   "gain_ci_high": np.nan, "p_value": np.nan, "p_holm": np.nan,
                   "verdict": "reference" if model == "reference" else "cannot tell"}
            if model == "guarded":
                g, lo, hi, p, ph, v = GAINS[sub]
                row.update(gain=scale * g, gain_ci_low=scale * lo, gain_ci_high=scale * hi,
                           p_value=p, p_holm=ph, verdict=v)
            elif model != "reference":
                row.update(gain=-0.2 * scale, gain_ci_low=-0.3 * scale,
                           gain_ci_high=-0.1 * scale, p_value=0.01, p_holm=0.04,
                           verdict="harms" if metric == "accuracy" else "helps")
            rows.append(row)
            if metric == "accuracy":
                rows.append({**row, "metric": "auroc", "gain_ci_low": np.nan,
                             "gain_ci_high": np.nan})
    if metric == "accuracy":              # fairness gaps (results role "fairness")
        for attr in ("age", "sex"):
            for gap in ("dp_difference", "eqodds_difference"):
                for m_i, model in enumerate(MODELS):
                    rows.append({"subgroup": f"attribute {attr}", "model": model,
                                 "metric": gap, "n_test": 60.0, "mean": 0.2 + 0.01 * m_i,
                                 "sd": 0.05, "reference": "reference",
                                 "gain": -0.0234 if model == "guarded" else 0.01,
                                 "gain_ci_low": -0.0567 if model == "guarded" else np.nan,
                                 "gain_ci_high": 0.0089 if model == "guarded" else np.nan,
                                 "p_value": np.nan, "p_holm": np.nan,
                                 "verdict": "reference" if model == "reference"
                                 else "cannot tell"})
    return pd.DataFrame(rows, columns=COLUMNS)


def _results(splits: int = 1, metric: str = "accuracy") -> pd.DataFrame:
    """results.csv: the guard rows of every outer split (old_female's effect and deployed
    model vary over splits) and test rows of the guarded model and the reference."""
    rows = []
    for o in range(splits):
        base = {"study": "personalization", "outer_split": o, "seed": 1, "fold": 0,
                "role": "guard"}
        for m, loss in (("generic", 0.69), ("logreg", 0.47), ("hgb", 0.44)):
            rows.append({**base, "model": m, "subgroup": "all", "metric": "guard_log_loss",
                         "value": loss, "n": np.nan})
        rows.append({**base, "model": "hgb", "subgroup": "all", "metric": "reference",
                     "value": 1.0, "n": np.nan})
        for sub, g in GUARD.items():
            g = dict(g)
            if sub == "old_female" and splits > 1:
                # effects 0.0456 + 0.01 * (o - 2): the median is split 2's; split 4 keeps
                # the reference
                g["effect"] += 0.01 * (o - 2)
                g["n"] += o
                if o == splits - 1:
                    g["deployed"] = "hgb"
            rows.append({**base, "model": g.pop("deployed"), "subgroup": sub,
                         "metric": "deployed", "value": 1.0, "n": g["n"]})
            n = g.pop("n")
            for k, v in g.items():
                rows.append({**base, "model": "guarded", "subgroup": sub,
                             "metric": f"guard_{k}", "value": v, "n": n})
        for seed in (1, 2):
            for sub in (*SUBGROUPS, "all"):
                for model, v in (("reference", 0.70), ("guarded", 0.70 + 0.01 * (o + 1))):
                    rows.append({"study": "personalization", "model": model,
                                 "outer_split": o, "seed": seed, "fold": 0, "role": "test",
                                 "subgroup": sub, "metric": metric, "value": v, "n": 10.0})
    return pd.DataFrame(rows)


def _row(text: str, subgroup: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.startswith(subgroup + " ")]
    assert lines, text
    return lines[0]


def _cells(text: str, subgroup: str) -> list[str]:
    """The subgroup's row as words, an interval ``[low, high]`` as one word (a table
    that would be too wide writes it ``[low,high]``)."""
    return _row(text, subgroup).replace(", ", ",").split()


def _check_widths(text: str) -> None:
    wide = [ln for ln in text.splitlines() if len(ln) > WIDTH]
    assert not wide, "\n".join(wide)


# -- the short report ------------------------------------------------------------------

def test_certificate_is_printed_with_its_numbers():
    results = _results()
    text = markdown_report(_summary(), title="heart: 1 seeds x 3 folds x 1 outer split(s)",
                           guard=results[results["role"] == "guard"])
    lines = text.splitlines()
    assert lines[0] == "## heart: 1 seeds x 3 folds x 1 outer split(s)"
    assert "Guard certificate (reference gradient boosting" in text
    cert = text[text.index("Guard certificate"):text.index("Accuracy (%)")]
    head = next(ln for ln in cert.splitlines() if ln.startswith("subgroup"))
    for col in ("n", "deployed", "effect [95 % CI]", "Holm p", "MDE", "acc. gain [95 % CI]",
                "verdict"):
        assert col in head
    # guard n, deployed, effect x 100 [CI], Holm p, MDE x 100, test gain [CI], verdict
    assert _cells(cert, "old_female") == [
        "old_female", "31", "decoupled", "+4.6", "[+1.2,+7.9]", "0.004", "3.2", "+5.0",
        "[+1.0,+9.0]", "helps"]
    assert _cells(cert, "old_male")[:3] == ["old_male", "41", "reference"]
    assert _cells(cert, "young_female") == [
        "young_female", "46", "cond-bias", "+12.0", "[+5.0,+19.0]", "<0.001", "26.3",
        "-12.3", "[-45.6,+11.1]", "cannot", "tell"]
    assert _cells(cert, "young_male")[:2] == ["young_male", "1190"]
    assert _cells(cert, "all") == ["all", "1308", "+1.2", "[-0.5,+3.0]", "cannot", "tell"]
    # the compact accuracy table: n_test and each model's mean, no sd, gains or p-values
    acc = text[text.index("Accuracy (%)"):]
    assert next(ln for ln in acc.splitlines() if ln.startswith("subgroup")).split() == [
        "subgroup", "n_test", "generic", "decoupled", "cond-bias", "logreg", "hgb",
        "reference", "guarded"]
    assert _row(acc, "old_male").split() == ["old_male", "9", "50.1", "51.1", "52.1", "53.1",
                                             "54.1", "55.1", "56.1"]
    assert "±" not in text and "AUROC" not in text and "gain generic" not in text
    assert lines[-1].startswith("Full tables: summary.csv and results.csv")
    assert "--output" in lines[-1]
    _check_widths(text)


def test_the_last_line_names_the_output_directory_when_known():
    results = _results()
    text = markdown_report(_summary(), guard=results, output="/tmp/rep_heart")
    assert text.splitlines()[-1] == ("Full tables: /tmp/rep_heart/summary.csv, results.csv "
                                     "(HTML: noharm report /tmp/rep_heart).")


def test_several_outer_splits_count_deployments_and_show_the_median_split():
    results = _results(splits=5)
    guard = results[results["role"] == "guard"]
    rec = certificate_records(guard)
    assert len(rec) == 5 * len(SUBGROUPS) and set(rec["reference"]) == {"hgb"}
    table = certificate_table(guard, _summary()).set_index("subgroup")
    fem = table.loc["old_female"]
    assert fem["deployed"] == "decoupled 4/5"          # split 4 kept the reference
    assert fem["n"] == "33"                            # split 2: the median effect
    assert fem["effect [95 % CI]"] == "+4.6 [+1.2, +7.9]"
    assert table.loc["old_male", "deployed"] == "reference 5/5"
    assert table.loc["young_female", "deployed"] == "cond-bias 5/5"
    text = markdown_report(_summary(), title="synthetic: 5 seeds x 5 folds x 5 outer "
                           "split(s)", guard=guard)
    assert "k/n: deployed in k outer splits" in text and "median-effect split" in text
    _check_widths(text)


def test_without_the_guard_only_the_compact_table():
    text = markdown_report(_summary(), title="t")
    assert "Guard certificate" not in text and "Accuracy (%) on the test rows" in text
    _check_widths(text)


def test_full_keeps_every_table():
    results = _results()
    text = markdown_report(_summary(), title="t", guard=results[results["role"] == "guard"],
                           full=True)
    for needle in ("| subgroup | n_test | acc generic |", "gain conditional bias",
                   "| old_female | generic |", "deployed (outer splits)", "Fairness gaps"):
        assert needle in text


def test_regression_variant_uses_the_mse():
    results = _results(metric="mse")
    summary = _summary("mse", scale=10.0)
    text = markdown_report(summary, title="reg", guard=results[results["role"] == "guard"])
    assert "MSE (target units²) on the test rows" in text and "MSE gain [95 % CI]" in text
    assert _cells(text, "old_female") == [
        "old_female", "31", "decoupled", "+0.0456", "[+0.0123,+0.0789]", "0.004", "0.0321",
        "+0.5", "[+0.1,+0.9]", "helps"]
    _check_widths(text)
    assert "| old_female | generic |" in markdown_report(summary, title="reg", full=True)


def test_external_validation_is_summarised():
    results = _results()
    text = markdown_report(_summary(), title="t", guard=results, external=_summary())
    assert "External validation (--test-data): accuracy (%) on the external rows" in text
    _check_widths(text)


# -- the HTML report ---------------------------------------------------------------------

class _Tables(HTMLParser):
    """Every table of an HTML text as [heading before it, rows of cell texts]."""

    def __init__(self):
        super().__init__()
        self.tables, self.heading, self._cell, self._in_h3 = [], "", None, False
        self.wrapped = []          # per table: inside a div.tw

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h3":
            self._in_h3, self.heading = True, ""
        elif tag == "div" and attrs.get("class") == "tw":
            self._tw = True
        elif tag == "table":
            self.tables.append([self.heading, []])
            self.wrapped.append(getattr(self, "_tw", False))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "h3":
            self._in_h3 = False
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1].append(self._cell.strip())
            self._cell = None
        elif tag == "div":
            self._tw = False

    def handle_data(self, data):
        if self._in_h3:
            self.heading += data
        if self._cell is not None:
            self._cell += data


def _run_dir(tmp_path, splits: int = 1):
    d = tmp_path / "run"
    d.mkdir()
    _summary().to_csv(d / "summary.csv", index=False)
    _results(splits).to_csv(d / "results.csv", index=False)
    # another study's Markdown result with a wide table (shown as its tables)
    cols = [f"balanced accuracy of method {i} (mean ± sd)" for i in range(12)]
    (d / "comparison.md").write_text(
        "## comparison\n\n| " + " | ".join(cols) + " |\n|" + "---|" * 12 + "\n| "
        + " | ".join("71.3 ± 2.4 [68.1, 74.5]" for _ in cols) + " |\n")
    return d


def _parse(text: str) -> _Tables:
    p = _Tables()
    p.feed(text)
    return p


def _table(parsed: _Tables, heading: str) -> list[dict]:
    found = [rows for h, rows in parsed.tables if h.startswith(heading)]
    assert found, [h for h, _ in parsed.tables]
    head, *body = found[0]
    return [dict(zip(head, r)) for r in body]


def test_html_has_the_certificate_of_every_split_and_the_gap_table(tmp_path):
    text = render_report(_run_dir(tmp_path, splits=3))
    parsed = _parse(text)
    cert = _table(parsed, "Guard: deployed model per subgroup and its certificate")
    fem = [r for r in cert if r["subgroup"] == "old_female"]
    assert [r["split"] for r in fem] == ["0", "1", "2", "all splits"]
    assert fem[2]["effect x 100 [95 % CI]"] == "+4.6 [+1.2,\xa0+7.9]"
    assert fem[0]["effect x 100 [95 % CI]"] == "+2.6 [+1.2,\xa0+7.9]"
    assert (fem[0]["guard n"], fem[0]["reference"], fem[0]["deployed"]) == ("31", "hgb",
                                                                           "decoupled")
    assert (fem[0]["p"], fem[0]["Holm p"], fem[0]["MDE x 100"]) == ("0.001", "0.004", "3.2")
    assert fem[2]["deployed"] == "reference"                   # the last split kept it
    # per split the guarded model's mean paired test gain; over all splits the summary's
    assert [r["test gain, points"] for r in fem[:3]] == ["+1.0", "+2.0", "+3.0"]
    assert fem[3]["deployed"] == "decoupled 2/3"
    assert fem[3]["test gain, points"] == "+5.0 [+1.0,\xa0+9.0]"
    assert fem[3]["verdict"] == "helps"
    gaps = _table(parsed, "Fairness gaps between each attribute's groups")
    assert [(r["attribute"], r["gap"]) for r in gaps] == [
        ("age", "demographic parity difference"), ("age", "equalized odds difference"),
        ("sex", "demographic parity difference"), ("sex", "equalized odds difference")]
    assert gaps[0]["generic"] == "20.0" and gaps[0]["guarded"] == "26.0"
    assert gaps[0]["guarded − reference [95 % CI]"] == "-2.3 [-5.7,\xa0+0.9]"
    assert gaps[0]["verdict"] == "cannot tell"


def test_html_single_split_certificate_has_the_summary_gain(tmp_path):
    parsed = _parse(render_report(_run_dir(tmp_path)))
    cert = _table(parsed, "Guard: deployed model per subgroup")
    fem = [r for r in cert if r["subgroup"] == "old_female"]
    assert len(fem) == 1 and fem[0]["test gain, points"] == "+5.0 [+1.0,\xa0+9.0]"
    assert cert[-1]["subgroup"] == "all" and cert[-1]["verdict"] == "cannot tell"


def _min_content_px(rows: list[list[str]]) -> float:
    """A lower bound of a table's width when every cell wraps at its spaces (no-break
    spaces kept): the longest word per column at ~6.5 px per character (12.8 px font)
    plus padding and borders."""
    cols = max(len(r) for r in rows)
    longest = [0] * cols
    for r in rows:
        for i, c in enumerate(r):
            longest[i] = max([longest[i], *(len(w) for w in c.split(" "))])
    return sum(6.5 * n + 13 for n in longest)


def test_html_tables_fit_the_page_structurally(tmp_path):
    text = render_report(_run_dir(tmp_path, splits=5))
    assert ".tw{max-width:100%;overflow-x:auto}" in text and "max-width:100%" in text
    parsed = _parse(text)
    assert parsed.tables and all(parsed.wrapped), parsed.wrapped
    for heading, rows in parsed.tables:
        assert _min_content_px(rows) <= 1100, heading




@needs_browser
def test_html_tables_fit_the_page_in_headless_chromium(tmp_path, sync_api):
    d = _run_dir(tmp_path, splits=5)
    path = d / "report.html"
    path.write_text(render_report(d), encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox",
                                                                    "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(path.as_uri())
            content, page_width, tables = page.evaluate("""() => {
                const b = document.body, cs = getComputedStyle(b);
                const content = b.clientWidth - parseFloat(cs.paddingLeft)
                                - parseFloat(cs.paddingRight);
                return [content, document.documentElement.scrollWidth,
                        Array.from(document.querySelectorAll('table')).map(t => [
                            t.getBoundingClientRect().width,
                            t.querySelector('th') ? t.querySelector('th').innerText : '',
                            t.parentElement.scrollWidth <= t.parentElement.clientWidth])];
            }""")
        finally:
            browser.close()
    assert content <= 1100 and page_width <= 1280
    for width, first, unscrolled in tables:
        assert width <= content + 0.5 and unscrolled, (width, content, first)
    assert len(tables) == 6          # accuracy, gains, AUROC, guard, gaps, comparison.md


def test_html_of_a_regression_study(tmp_path):
    """A regression directory has MSE tables and the certificate in MSE (the report
    drew an accuracy figure of no models and divided by zero)."""
    d = tmp_path / "reg"
    d.mkdir()
    _summary("mse", scale=10.0).to_csv(d / "summary.csv", index=False)
    _results(metric="mse").to_csv(d / "results.csv", index=False)
    parsed = _parse(render_report(d))
    assert _table(parsed, "Mean squared error (target units²)")[0]["MSE generic"] == "5 ± 0.1"
    cert = _table(parsed, "Guard: deployed model per subgroup")
    assert cert[0]["effect [95 % CI]"] == "+0.0456 [+0.0123,\xa0+0.0789]"
    assert cert[0]["test MSE gain"] == "+0.5 [+0.1,\xa0+0.9]"
