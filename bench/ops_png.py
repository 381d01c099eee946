"""PDF→PNG at 150 DPI, op level: docmill's `pdf_to_png` against `pdftoppm -r 150 -png`.

The first pages (up to `PAGES_PER_FILE`) of every readable PDF: enough pages for docmill to
spread a document over both cores, few enough that pdftoppm (about half a second a page
here) fits the time budget. docmill renders with the op's own process spreading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import corpus
from bench.context import Context
from bench.corpus import CorpusFile
from bench.docmill_ops import OpRunner
from bench.rows import Row, at_most, runs_label
from bench.timing import measure_pair, run_tool, tool
from docmill.ops.pdf_to_png import MIN_PAGES_PER_PROCESS
from docmill.spread import process_count

PAGES_PER_FILE = 4
QUICK_FILES = ("pdfjs__tracemonkey.pdf", "pdfplumber__chelsea_pdta.pdf",
               "ocrmypdf__cardinal.pdf")
DPI = 150


@dataclass
class FileResult:
    file: CorpusFile
    pages: int
    ours: float  # median seconds
    theirs: float
    our_bytes: int
    their_bytes: int


def pdftoppm_command(path: Path, password: str, prefix: Path, first: int,
                     last: int) -> list[str | Path]:
    command: list[str | Path] = ["pdftoppm", "-r", str(DPI), "-png", "-f", str(first),
                                 "-l", str(last)]
    if password:
        command += ["-upw", password]
    return [*command, path, prefix]


def run(ctx: Context) -> list[Row]:
    warmed: list[bool] = []

    def measure(item: CorpusFile) -> FileResult:
        result = measure_file(ctx, item, min(item.pages, PAGES_PER_FILE),
                              warm_reference=not warmed)
        warmed.append(True)
        return result

    results, failures = corpus.measure_pdfs(ctx.quick, QUICK_FILES, "png", measure)
    return _rows(ctx, results, failures)


def measure_file(ctx: Context, item: CorpusFile, pages: int, runs: int | None = None,
                 reference_runs: int | None = None, warm_reference: bool = True) -> FileResult:
    """Median times and output bytes of both tools on the first `pages` pages of a file."""
    ours = OpRunner(ctx, "pdf_to_png", [item.path], password=item.password,
                    pages=f"0-{pages - 1}")
    prefix = ctx.fresh_dir("pdftoppm") / "page"
    command = pdftoppm_command(item.path, item.password, prefix, 1, pages)
    # pdftoppm's pages cost about half a second each: its warm-up is one page, and only
    # when asked (the first file), which is enough to bring the program into memory.
    ours()
    if warm_reference:
        run_tool(pdftoppm_command(item.path, item.password, prefix, 1, 1))
    mine, theirs = measure_pair(ours, tool(command), runs or ctx.runs,
                                ctx.heavy_runs if reference_runs is None else reference_runs,
                                warm=False)
    our_bytes = sum(path.stat().st_size for path in ours.outputs)
    their_bytes = sum(path.stat().st_size for path in prefix.parent.glob("page*.png"))
    ours.discard()
    return FileResult(item, pages, mine.median, theirs.median, our_bytes, their_bytes)


def _rows(ctx: Context, results: list[FileResult], failures: list[str]) -> list[Row]:
    pages = sum(result.pages for result in results)
    ours = sum(result.ours for result in results)
    theirs = sum(result.theirs for result in results)
    processes = process_count(PAGES_PER_FILE, MIN_PAGES_PER_PROCESS)
    spread = sum(1 for result in results if process_count(result.pages, MIN_PAGES_PER_PROCESS) > 1)
    note = (f"{len(results)} PDFs, first {PAGES_PER_FILE} pages of each ({pages} pages); "
            f"{spread} documents spread over {processes} processes")
    if failures:
        note += f"; failed: {'; '.join(failures)}"
    details = {"files": [
        {"file": r.file.name, "pages": r.pages, "docmill_s": r.ours, "pdftoppm_s": r.theirs,
         "docmill_bytes": r.our_bytes, "pdftoppm_bytes": r.their_bytes} for r in results
    ]}
    largest = max(results, key=lambda r: r.our_bytes / max(r.their_bytes, 1))
    return [
        Row(section="png", level="op", name="PDF→PNG 150 DPI, corpus", unit="ms/page",
            docmill=ours / pages * 1000, reference=theirs / pages * 1000,
            tool="pdftoppm -r 150 -png", target=at_most(2, "ratio", 0.15, "≤ 0.15× ref"),
            runs=runs_label(ctx.runs, ctx.heavy_runs), note=note, details=details),
        Row(section="png", level="quality", name="PDF→PNG output bytes", unit="MB",
            docmill=sum(r.our_bytes for r in results) / 1e6,
            reference=sum(r.their_bytes for r in results) / 1e6, tool="pdftoppm",
            target=at_most(2, "ratio", 1.3, "≤ 1.3× ref"),
            note=f"largest ratio: {largest.file.name} at "
                 f"{largest.our_bytes / max(largest.their_bytes, 1):.2f}×"),
    ]
