"""The run's table: printed, written as JSON (bench/results/latest.json) and, after a full
run, as docs/performance.md (whose hand-written part, below a marker, is kept)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.rows import Row

MARKER = ("<!-- Text below this line is written by hand and kept when `make bench` rewrites "
          "the page. -->")
GOALS = {
    1: "PDF→text: ≥ 1.3× pdftotext -layout pages/s; F1 ≥ 0.98 on every PDF with text",
    2: "PDF→PNG 150 DPI: ≤ 0.15× pdftoppm ms/page; ≤ 1.3× its bytes",
    3: "Optimize: total ≤ 0.70 of input; none larger; SSIM ≥ 0.95; ≤ 0.3× gs /ebook time",
    4: "Office→PDF: ≤ 1.2× warm listener; ≥ 5× faster than cold soffice; batch ≥ 2 listeners",
    5: "Images→PDF: ≤ 1.2× img2pdf per image; JPEG bytes identical",
    6: "HTTP: sync ≤ op + 15 ms; 200 async from 20 clients, no errors, p99 ≤ 100 ms; "
       "/job/check ≤ 5 ms",
    7: "Memory: a worker on the 600+-page document < 500 MB RSS",
}


def format_number(value: float | None) -> str:
    if value is None:
        return "—"
    size = abs(value)
    if float(value).is_integer() and size < 1e6:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _figure(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{format_number(value)} {unit}".strip()


def _met(row: Row) -> str:
    return {None: "", True: "yes", False: "**NO**"}[row.met]


def table_lines(rows: list[Row]) -> list[str]:
    """The table in Markdown, then one numbered note per row that has one."""
    lines = [
        "| # | operation | level | docmill | reference | ratio | target | met | runs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for number, row in enumerate(rows, 1):
        reference = _figure(row.reference, row.unit)
        if row.tool:
            reference = f"{reference} ({row.tool})"
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}×"
        target = row.target.label if row.target else ""
        lines.append(
            f"| {number} | {row.name} | {row.level} | {_figure(row.docmill, row.unit)} | "
            f"{reference} | {ratio} | {target} | {_met(row)} | {row.runs} |"
        )
        if row.note:
            notes.append(f"{number}. {row.note}")
    return [*lines, "", *notes] if notes else lines


def goal_lines(rows: list[Row]) -> list[str]:
    """One line per target of the issue: met, missed, or not measured in this run."""
    lines = ["| target | met | rows |", "|---|---|---|"]
    for goal, text in GOALS.items():
        numbered = [(n, row) for n, row in enumerate(rows, 1)
                    if row.target is not None and row.target.goal == goal]
        verdicts = [row.met for _, row in numbered]
        if not numbered or all(verdict is None for verdict in verdicts):
            status = "not measured"
        elif all(verdicts):
            status = "yes"
        else:
            status = "**NO**"
        missed = [f"#{n} ({row.target.margin(row)})" for n, row in numbered
                  if row.met is False and row.target is not None]
        listed = ", ".join(f"#{n}" for n, _ in numbered)
        if missed:
            listed += "; missed: " + ", ".join(missed)
        lines.append(f"| {goal}. {text} | {status} | {listed} |")
    return lines


def print_report(rows: list[Row]) -> None:
    print("\n".join(["", *goal_lines(rows), "", *table_lines(rows), ""]))


def write_json(rows: list[Row], machine: dict[str, Any], options: dict[str, Any],
               path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"when": time.strftime("%Y-%m-%d %H:%M:%S %z"), "options": options,
            "machine": machine, "rows": [row.as_json() for row in rows]}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def machine_lines(machine: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    tools = ", ".join(f"{name} {version}" for name, version in machine["tools"].items())
    load = machine.get("load_at_start", [])
    end = machine.get("load_at_end", [])
    sections = ", ".join(f"{name} {value}" for name, value in
                         machine.get("load_by_section", {}).items())
    return [
        f"- CPU: {machine['cpu_model']}, {machine['cpus']} cores (nproc)",
        f"- RAM: {machine['ram_gib']} GiB; kernel {machine['kernel']}; "
        f"Python {machine['python']}",
        f"- Load average (1, 5, 15 min) at start {load}, at end {end}; 1-minute load as "
        f"each section started: {sections}",
        f"- docmill: commit {machine.get('docmill_commit', 'unknown')}; dependencies: "
        f"{packages}",
        f"- Reference tools: {tools}",
        f"- Run took {machine.get('duration_s', 0):.0f} s",
    ]


def write_markdown(rows: list[Row], machine: dict[str, Any], path: Path) -> None:
    """Rewrite docs/performance.md's figures, keeping what is written below the marker."""
    kept = ""
    if path.is_file() and MARKER in path.read_text():
        kept = path.read_text().split(MARKER, 1)[1]
    lines = [
        "# Performance",
        "",
        f"Figures of the last full `make bench` run ({time.strftime('%Y-%m-%d')}), written by "
        "`python -m bench`. Every row times docmill and the reference tool on the same "
        "files in the same run, alternating, as the median of the timed runs after a "
        "warm-up (`runs`: docmill/reference where they differ). `op` rows call docmill's "
        "operation in-process; `http` rows go through a running `docmill serve` with 2 "
        "workers. Ratios are docmill / reference. The JSON of the run, with per-file "
        "figures, is `bench/results/latest.json`.",
        "",
        "## Machine",
        "",
        *machine_lines(machine),
        "",
        "## Targets",
        "",
        *goal_lines(rows),
        "",
        "## Figures",
        "",
        *table_lines(rows),
        "",
        MARKER,
    ]
    path.write_text("\n".join(lines) + (kept if kept else "\n"))
