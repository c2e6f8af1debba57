"""Render a :class:`~reports.paper_table.PaperTable` as LaTeX (booktabs), Markdown (GFM), CSV or JSON.

Every name from a run is escaped for its format: LaTeX specials become their text commands, and
Markdown cells escape the pipe, Markdown syntax and HTML (GitHub renders raw HTML in tables).
The markup is this module's own (no tabulate).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from bench.core.csvsafe import csv_text
from bench.engine import significance as sig
from reports.paper_table import PaperTable, TableCell, finite_or_none, long_rows

FORMATS = ("latex", "markdown", "csv", "json")
SCHEMA = "bfrbench.table/1"

_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
    "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
    ">": r"\textgreater{}", "|": r"\textbar{}", '"': r"{\char34}",
}
#: the marks of notes in LaTeX (math mode) and Markdown
_MARKS = {"nonstandard": ("*", "*"), "standin": (r"\dagger", "\u2020")}


def latex_escape(text: str) -> str:
    """``text`` as LaTeX text: specials as commands, control characters dropped."""
    return "".join(_LATEX.get(ch, ch) for ch in str(text) if ch >= " " or ch == "\t")


def markdown_escape(text: str) -> str:
    """``text`` safe in a GFM table cell: HTML entities, Markdown syntax and the pipe escaped, one line."""
    out = []
    for ch in str(text):
        if ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ch in "\\`*_[]|~":  # inline syntax only: a cell is never at a line start
            out.append("\\" + ch)
        elif ch < " ":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def render(table: PaperTable, fmt: str, caption: str = "", label: str = "") -> str:
    """The table in ``fmt`` (one of FORMATS)."""
    if fmt == "latex":
        return latex(table, caption, label)
    if fmt == "markdown":
        return markdown(table, caption)
    if fmt == "csv":
        return csv(table)
    if fmt == "json":
        return to_json(table)
    raise ValueError(f"unknown format {fmt!r}")


# ---------------------------------------------------------------------------------------------- LaTeX
@dataclass(frozen=True)
class _Markup:
    """How one format writes a cell's parts (the parts themselves are decided once, in _cell)."""

    missing: str
    bold: str
    underline: str
    plus_minus: str
    #: the significance letters and the short n, as one suffix
    marks: Callable[[str, int | None], str]


def _latex_marks(group: str, n: int | None) -> str:
    sup = ([rf"\mathrm{{{group}}}"] if group else []) + ([f"n={n}"] if n is not None else [])
    return "$^{" + r",\,".join(sup) + "}$" if sup else ""


def _md_marks(group: str, n: int | None) -> str:
    return (f"<sup>{group}</sup>" if group else "") + (f" (n={n})" if n is not None else "")


LATEX = _Markup("--", r"\textbf{%s}", r"\underline{%s}", r"{\scriptsize$\pm$%s}", _latex_marks)
MARKDOWN = _Markup("\u2014", "**%s**", "<u>%s</u>", " \u00b1 %s", _md_marks)


def _cell(table: PaperTable, idx: int, cell: TableCell | None, m: _Markup) -> str:
    """A cell: the printed value, bold or underlined, ± half-width, letters and n where unequal."""
    col = table.columns[idx]
    if cell is None or cell.value is None:
        return m.missing
    text = cell.text(col.decimals)
    if cell.best:
        text = m.bold % text
    elif cell.second:
        text = m.underline % text
    hw = cell.half_width()
    if hw is not None:
        text += m.plus_minus % f"{hw:.{col.decimals}f}"
    return text + m.marks(cell.group, cell.n if cell.short_n else None)


def _latex_metric(table: PaperTable, idx: int) -> str:
    col = table.columns[idx]
    arrow = r"$\uparrow$" if col.higher_better else r"$\downarrow$"
    mark = "" if col.standard else "$^{*}$"
    return latex_escape(table.label(col.metric)) + arrow + mark


def latex(table: PaperTable, caption: str = "", label: str = "") -> str:
    """A ``table`` float with a booktabs ``tabular``: datasets spanning their metrics, notes below."""
    datasets = table.datasets
    spans = [(ds, [i for i, c in enumerate(table.columns) if c.dataset == ds]) for ds in datasets]
    lines = [
        "% made by `bfrbench table` from: " + ", ".join(latex_escape(r) for r in table.runs),
        "% needs \\usepackage{booktabs}",
        r"\begin{table}[t]",
        r"\centering",
    ]
    if caption:
        lines.append(rf"\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{latex_escape(label)}}}")
    colspec = "l" + "c" * len(table.columns)
    lines += [rf"\begin{{tabular}}{{{colspec}}}", r"\toprule"]
    if len(datasets) > 1:
        heads, rules, start = [""], [], 2
        for ds, ix in spans:
            heads.append(rf"\multicolumn{{{len(ix)}}}{{c}}{{{latex_escape(table.label(ds))}}}")
            rules.append(rf"\cmidrule(lr){{{start}-{start + len(ix) - 1}}}")
            start += len(ix)
        lines.append(" & ".join(heads) + r" \\")
        lines.append(" ".join(rules))
        first = "Method"
    else:
        first = "Method (" + latex_escape(table.label(datasets[0])) + ")"
    lines.append(" & ".join([first] + [_latex_metric(table, i) for i in range(len(table.columns))]) + r" \\")
    lines.append(r"\midrule")
    for m in table.methods:
        name = latex_escape(table.label(m)) + ("$^{\\dagger}$" if m in table.standin else "")
        cells = [_cell(table, i, table.cells.get((m, i)), LATEX) for i in range(len(table.columns))]
        lines.append(" & ".join([name] + cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    notes = _marked_notes(table, latex=True)
    if notes:
        lines.append(r"\par\smallskip\footnotesize")
        lines.append(" \\\\\n".join(notes))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _marked_notes(table: PaperTable, latex: bool) -> list[str]:
    """The notes, each prefixed with the mark it explains, escaped for the format."""
    out = []
    for key, text in table.notes().items():
        mark = _MARKS.get(key)
        if latex:
            body = latex_escape(text).replace("\u00b1", r"$\pm$").replace("\u2014", "--")
            out.append((f"${mark[0]}$ " if mark else "") + body)
        else:
            out.append((f"{mark[1]} " if mark else "") + markdown_escape(text))
    return out


def latex_document(body: str) -> str:
    """``body`` (a table from :func:`latex`) in a minimal article, compilable with latex-base alone."""
    return "\n".join([
        r"\documentclass{article}",
        r"\IfFileExists{booktabs.sty}{\usepackage{booktabs}}{%",
        r"  \newcommand{\toprule}{\hline}\newcommand{\midrule}{\hline}\newcommand{\bottomrule}{\hline}%",
        r"  \def\cmidrule(##1)##2{}}",
        r"\begin{document}",
        body,
        r"\end{document}",
        "",
    ])


# ------------------------------------------------------------------------------------------- Markdown
def markdown(table: PaperTable, caption: str = "") -> str:
    """A GitHub-flavoured Markdown table (first column left, numbers right) with the notes below."""
    multi = len(table.datasets) > 1
    heads = ["Method"]
    for col in table.columns:
        name = markdown_escape(table.label(col.metric)) + ("\u2191" if col.higher_better else "\u2193")
        name += "" if col.standard else "\\*"
        heads.append(f"{markdown_escape(table.label(col.dataset))} {name}" if multi else name)
    if not multi:
        heads[0] = f"Method ({markdown_escape(table.label(table.datasets[0]))})"
    lines = []
    if caption:
        lines += [f"**{markdown_escape(caption)}**", ""]
    lines.append("| " + " | ".join(heads) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * len(table.columns)) + "|")
    for m in table.methods:
        name = markdown_escape(table.label(m)) + ("\u2020" if m in table.standin else "")
        cells = [_cell(table, i, table.cells.get((m, i)), MARKDOWN) for i in range(len(table.columns))]
        lines.append("| " + " | ".join([name] + cells) + " |")
    notes = _marked_notes(table, latex=False)
    if notes:
        lines.append("")
        lines += [f"{n}  " for n in notes[:-1]] + notes[-1:]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- CSV and JSON
def csv(table: PaperTable) -> str:
    """One row per cell (tidy), every number unrounded; text cells safe for spreadsheets."""
    rows = long_rows(table)
    header = list(rows[0]) if rows else ["dataset", "metric", "method", "value"]
    return csv_text(header, rows)


def to_json(table: PaperTable) -> str:
    """The table with its columns, cells, notes and (with ties marked) every pairwise test."""
    tests = []
    for idx, col_tests in table.tests.items():
        col = table.columns[idx]
        for p in col_tests.pairs:
            tests.append({"dataset": col.dataset, "metric": col.metric, "a": p.a, "b": p.b, "n": p.n,
                          "mean_diff": finite_or_none(p.mean_diff), "statistic": finite_or_none(p.statistic),
                          "p": finite_or_none(p.p), "p_holm": finite_or_none(p.p_adj), "significant": p.significant})
    cells = []
    for r in long_rows(table):
        cells.append({k: (finite_or_none(v) if k in ("value", "ci_low", "ci_high") else v) for k, v in r.items()})
    doc = {
        "schema": SCHEMA,
        "runs": table.runs,
        "columns": [{"dataset": c.dataset, "metric": c.metric, "protocol": c.protocol,
                     "higher_better": c.higher_better, "standard": c.standard, "decimals": c.decimals}
                    for c in table.columns],
        "methods": [{"method": m, "standin": m in table.standin} for m in table.methods],
        "cells": cells,
        "significance": {"test": table.spec.test, "correction": sig.CORRECTION, "alpha": table.spec.alpha,
                         "pairs": tests} if table.spec.mark_ties else None,
        "notes": table.notes(),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
