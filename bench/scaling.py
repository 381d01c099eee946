"""Scaling: text and PNG pages/s on documents of 1, 10, 100 and 600+ pages.

The documents are the first 1, 10 and 100 pages of the corpus's largest PDF, cut out with
qpdf into real documents of their own, and that PDF whole: the same kind of page at every
size, so pages/s should stay flat as documents grow.

pdftoppm takes about a third of a second a page here: it is timed at a size while one run
fits `REFERENCE_RUN_BUDGET` seconds, once while it fits `SINGLE_RUN_BUDGET`, and not at
all beyond (the 600+-page document: minutes), unless `--full-reference` asks for it.
"""

from __future__ import annotations

from pathlib import Path

from bench import corpus
from bench.context import Context, log
from bench.corpus import CorpusFile
from bench.docmill_ops import OpRunner
from bench.ops_png import pdftoppm_command
from bench.ops_text import pdftotext_command
from bench.rows import Row, runs_label
from bench.timing import Timing, measure_alternating, measure_pair, run_tool, tool

SIZES = (1, 10, 100)  # and the whole largest document
QUICK_SIZES = (1, 10)
REFERENCE_RUN_BUDGET = 20.0
SINGLE_RUN_BUDGET = 40.0
FLATNESS_BASE = 100  # pages/s of the largest document is compared with this size's


def documents(ctx: Context) -> list[CorpusFile]:
    """The scaling documents, smallest first; the last is the whole largest corpus PDF."""
    source = corpus.largest_pdf()
    folder = ctx.fresh_dir("scaling")
    made = []
    for pages in QUICK_SIZES if ctx.quick else SIZES:
        path = folder / f"{source.path.stem}-{pages}p.pdf"
        run_tool(["qpdf", *(["--password=" + source.password] if source.password else []),
                  "--empty", "--pages", source.path, f"1-{pages}", "--", path])
        made.append(CorpusFile(path, "pdf", pages, "", f"first {pages} pages of {source.name}"))
    return made if ctx.quick else [*made, source]


def run(ctx: Context) -> list[Row]:
    docs = documents(ctx)
    rows = [_text_row(ctx, doc) for doc in docs]
    rows += _png_rows(ctx, docs)
    if docs[-1].pages > FLATNESS_BASE:
        rows += [_flatness_row(rows, "text"), _flatness_row(rows, "png")]
    return rows


def _text_row(ctx: Context, doc: CorpusFile) -> Row:
    log(f".. scaling text: {doc.pages} pages")
    ours = OpRunner(ctx, "pdf_to_text", [doc.path], password=doc.password)
    output = ctx.fresh_dir("pdftotext") / "out.txt"
    mine, theirs = measure_pair(ours, tool(pdftotext_command(doc.path, doc.password, output)),
                                ctx.runs)
    ours.discard()
    return _row("text", doc, mine, theirs, "pdftotext -layout", runs_label(ctx.runs))


def _png_rows(ctx: Context, docs: list[CorpusFile]) -> list[Row]:
    rows = []
    seconds_per_page = 0.0  # the reference's, at the last size it was timed
    for index, doc in enumerate(docs):
        log(f".. scaling png: {doc.pages} pages")
        # The whole largest document takes seconds a run: fewer runs and no warm-up (the
        # smaller documents have warmed everything). pdftoppm is warmed up once, at the
        # first size: its runs cost seconds.
        large = doc.pages > 100
        runs = ctx.heavy_runs if large else ctx.runs
        ours = OpRunner(ctx, "pdf_to_png", [doc.path], password=doc.password)
        if not large:
            ours()
        reference_runs = _reference_runs(ctx, doc.pages * seconds_per_page)
        theirs = None
        if reference_runs:
            prefix = ctx.fresh_dir("pdftoppm") / "page"
            work = tool(pdftoppm_command(doc.path, doc.password, prefix, 1, doc.pages))
            if index == 0:
                work()
            mine, theirs = measure_pair(ours, work, runs, reference_runs, warm=False)
            seconds_per_page = theirs.median / doc.pages
        else:
            [mine] = measure_alternating([ours], [runs], warm=False)
        ours.discard()
        row = _row("png", doc, mine, theirs, "pdftoppm -r 150 -png",
                   runs_label(runs, reference_runs))
        if theirs is None:
            row.note = (f"pdftoppm not timed: one run would take about "
                        f"{doc.pages * seconds_per_page:.0f} s (--full-reference times it)")
        elif reference_runs < ctx.heavy_runs:
            row.note = f"pdftoppm timed once: one run takes {theirs.median:.0f} s"
        rows.append(row)
    return rows


def _reference_runs(ctx: Context, estimate: float) -> int:
    """How many times to run pdftoppm when one run should take `estimate` seconds."""
    if ctx.full_reference or estimate <= REFERENCE_RUN_BUDGET:
        return ctx.heavy_runs
    return 1 if estimate <= SINGLE_RUN_BUDGET else 0


def _row(kind: str, doc: CorpusFile, mine: Timing, theirs: Timing | None, name: str,
         runs: str) -> Row:
    what = "PDF→text (layout)" if kind == "text" else "PDF→PNG 150 DPI"
    return Row(
        section="scaling", level="op", name=f"{what}, {doc.pages}-page document",
        unit="pages/s", docmill=doc.pages / mine.median,
        reference=None if theirs is None else doc.pages / theirs.median, tool=name, runs=runs,
        details={"pages": doc.pages, "document": str(Path(doc.path).name)},
    )


def _flatness_row(rows: list[Row], kind: str) -> Row:
    """docmill's pages/s on the largest document against the 100-page one."""
    mine = [row for row in rows if row.name.startswith("PDF→text" if kind == "text" else
                                                         "PDF→PNG")]
    largest = max(mine, key=lambda row: row.details["pages"])
    base = next(row for row in mine if row.details["pages"] == FLATNESS_BASE)
    return Row(
        section="scaling", level="op",
        name=f"{'text' if kind == 'text' else 'PNG'} pages/s, "
             f"{largest.details['pages']} vs {FLATNESS_BASE} pages",
        unit="pages/s", docmill=largest.docmill, reference=base.docmill,
        tool=f"docmill, {FLATNESS_BASE} pages",
        note="1.0× or more: no per-page cost that grows with the document",
    )
