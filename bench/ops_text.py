"""PDF→text, op level: docmill's `pdf_to_text` against `pdftotext -layout` on the corpus.

Speed is pages per second over the whole set (the sum of pages over the sum of each file's
median time). Quality is bag-of-words F1 against pdftotext's text, per file; a file whose
pdftotext output has no words has no text layer (a scan) and is not scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import corpus, quality
from bench.context import Context
from bench.corpus import CorpusFile
from bench.docmill_ops import OpRunner
from bench.rows import Row, at_least, runs_label
from bench.timing import measure_pair, tool

QUICK_FILES = (
    "pdfjs__tracemonkey.pdf",
    "docling__right_to_left_01.pdf",
    "pdfplumber__issue-67-example.pdf",
    "unstructured__korean-text-with-tables.pdf",
    "pdfplumber__nics-background-checks-2015-11.pdf",
    "pdfplumber__federal-register-2020-17221.pdf",
)
MIN_F1 = 0.98
# Past this share of control characters, pdftotext's "text" is glyph codes, not words.
MAX_UNREADABLE = 0.2


@dataclass
class FileResult:
    file: CorpusFile
    ours: float  # median seconds
    theirs: float
    f1: float | None  # None: no text layer


def pdftotext_command(path: Path, password: str, output: Path, first: int = 0,
                      last: int = 0) -> list[str | Path]:
    command: list[str | Path] = ["pdftotext", "-layout", "-enc", "UTF-8"]
    if password:
        command += ["-upw", password]
    if first:
        command += ["-f", str(first), "-l", str(last)]
    return [*command, path, output]


def run(ctx: Context) -> list[Row]:
    results, failures = corpus.measure_pdfs(
        ctx.quick, QUICK_FILES, "text", lambda item: _measure_file(ctx, item)
    )
    return [_speed_row(ctx, results, failures), _quality_row(results)]


def _measure_file(ctx: Context, item: CorpusFile) -> FileResult:
    ours = OpRunner(ctx, "pdf_to_text", [item.path], password=item.password)
    reference_text = ctx.fresh_dir("pdftotext") / "out.txt"
    reference = tool(pdftotext_command(item.path, item.password, reference_text))
    mine, theirs = measure_pair(ours, reference, ctx.runs)
    text = ours.outputs[0].read_text(encoding="utf-8", errors="replace")
    score = _f1(text, reference_text.read_text(encoding="utf-8", errors="replace"))
    ours.discard()
    return FileResult(item, mine.median, theirs.median, score)


def _f1(ours: str, reference: str) -> float | None:
    reference_bag = quality.bag_of_words(reference)
    if not reference_bag or quality.unreadable_share(reference) > MAX_UNREADABLE:
        return None
    return quality.f1_score(quality.bag_of_words(ours), reference_bag)


def _speed_row(ctx: Context, results: list[FileResult], failures: list[str]) -> Row:
    pages = sum(result.file.pages for result in results)
    ours = sum(result.ours for result in results)
    theirs = sum(result.theirs for result in results)
    slowest = max(results, key=lambda result: result.ours / result.theirs)
    note = (f"{len(results)} PDFs, {pages} pages; slowest file {slowest.file.name} at "
            f"{slowest.theirs / slowest.ours:.2f}x pdftotext's speed")
    if failures:
        note += f"; failed: {'; '.join(failures)}"
    return Row(
        section="text", level="op", name="PDF→text (layout), corpus", unit="pages/s",
        docmill=pages / ours, reference=pages / theirs, tool="pdftotext -layout",
        target=at_least(1, "ratio", 1.3, "≥ 1.3× ref"), runs=runs_label(ctx.runs), note=note,
        details={"files": [
            {"file": r.file.name, "pages": r.file.pages, "docmill_s": r.ours,
             "pdftotext_s": r.theirs, "f1": r.f1} for r in results
        ]},
    )


def _quality_row(results: list[FileResult]) -> Row:
    scored = [result for result in results if result.f1 is not None]
    worst = min(scored, key=lambda result: result.f1 or 0.0)
    below = [f"{r.file.name} {r.f1:.3f}" for r in scored if (r.f1 or 0.0) < MIN_F1]
    note = f"{len(scored)} PDFs with a text layer; lowest {worst.file.name}"
    if below:
        note += f"; below {MIN_F1}: {', '.join(below)}"
    return Row(
        section="text", level="quality", name="PDF→text words vs pdftotext, min F1",
        unit="F1", docmill=worst.f1, tool="pdftotext -layout",
        target=at_least(1, "value", MIN_F1, f"≥ {MIN_F1} every file"), note=note,
    )
