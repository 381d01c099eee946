"""`python -m bench`: run the benchmark sections, print the table, write the results.

    python -m bench                  # everything (about 10 minutes on 2 cores)
    python -m bench --quick          # fewer files and runs: a smoke run of every section
    python -m bench --only text,png  # some sections

A full run of every section also rewrites docs/performance.md; every run writes
bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    machine,
    memory,
    ops_images,
    ops_office,
    ops_optimize,
    ops_png,
    ops_text,
    over_http,
    report,
    scaling,
)
from bench.context import Context, log
from bench.rows import Row

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "latest.json"
PERFORMANCE_PAGE = REPO / "docs" / "performance.md"

# In this order: the office section starts LibreOffice (and threads) in this process, so
# it comes last, after every section whose renderer forks.
SECTIONS: dict[str, Callable[[Context], list[Row]]] = {
    "text": ops_text.run,
    "png": ops_png.run,
    "scaling": scaling.run,
    "memory": memory.run,
    "optimize": ops_optimize.run,
    "images": ops_images.run,
    "http": over_http.run,
    "office": ops_office.run,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer files and runs")
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join(SECTIONS)}")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per figure (default 5; 1 with --quick)")
    parser.add_argument("--full-reference", action="store_true",
                        help="also time references that take minutes (pdftoppm, 600+ pages)")
    args = parser.parse_args(argv)
    unknown = set(_selected(args)) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def _selected(args: argparse.Namespace) -> list[str]:
    if not args.only:
        return list(SECTIONS)
    return [name.strip() for name in args.only.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runs = args.runs or (1 if args.quick else 5)
    selected = _selected(args)
    started = time.monotonic()
    description = machine.describe()
    rows: list[Row] = []
    failed: list[str] = []
    load: dict[str, float] = {}  # 1-minute load average as each section started
    with tempfile.TemporaryDirectory(prefix="docmill-bench-") as scratch:
        ctx = Context(quick=args.quick, runs=runs, heavy_runs=min(runs, 1 if args.quick else 3),
                      scratch=Path(scratch), full_reference=args.full_reference)
        try:
            for name in selected:
                load[name] = round(os.getloadavg()[0], 2)
                log(f"== {name} (load average {load[name]})")
                section_started = time.monotonic()
                try:
                    rows.extend(SECTIONS[name](ctx))
                except Exception:  # one broken section must not lose the others' figures
                    failed.append(name)
                    log(traceback.format_exc())
                log(f"== {name}: {time.monotonic() - section_started:.0f} s")
        finally:
            ctx.close()
    description["load_at_end"] = [round(value, 2) for value in os.getloadavg()]
    description["duration_s"] = round(time.monotonic() - started, 1)
    description["load_by_section"] = load
    options = {"quick": args.quick, "runs": runs, "sections": selected, "failed": failed}
    report.print_report(rows)
    report.write_json(rows, description, options, RESULTS)
    if not args.quick and not args.only and args.runs is None:
        report.write_markdown(rows, description, PERFORMANCE_PAGE)
        log(f"wrote {RESULTS.relative_to(REPO)} and {PERFORMANCE_PAGE.relative_to(REPO)}")
    else:
        log(f"wrote {RESULTS.relative_to(REPO)}")
    log(f"took {description['duration_s']:.0f} s")
    if failed:
        log(f"sections that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
