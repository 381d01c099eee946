"""Images→PDF, op level: docmill's `image_to_pdf` against img2pdf on every corpus image.

Two references: img2pdf's library called in-process (engine against engine, the same
footing as docmill's op) and the `img2pdf` program (which also pays for starting Python).
Images either side refuses (a decompression bomb) are left out, and so are images where
the two make different documents (img2pdf puts every frame of an animated GIF on a page,
docmill only the first), since their times are not for the same work.

JPEG pass-through: the DCT stream in docmill's PDF must be the input file, byte for byte.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import img2pdf
import pikepdf

from bench import corpus
from bench.context import Context, log
from bench.corpus import CorpusFile
from bench.docmill_ops import OpRunner
from bench.rows import Row, at_least, at_most, runs_label
from bench.timing import measure, measure_pair, tool
from docmill.errors import DocmillError

QUICK_FILES = ("ocrmypdf__baiona_color.jpg", "ocrmypdf__baiona_alpha.png",
               "pillow__pport_g4.tif", "docling__webp-test.webp")
MAX_RATIO = 1.2


@dataclass
class ImageResult:
    file: CorpusFile
    ours: float  # median seconds
    library: float
    program: float
    same_pages: bool
    jpeg_identical: bool | None  # None: not a JPEG


# Conversions take a few milliseconds: more runs steady the medians against the library.
LIBRARY_RUNS_FACTOR = 3


class LibraryConversion:
    """img2pdf's library on one image, writing its PDF to a file as the op does."""

    def __init__(self, source: Path, output: Path) -> None:
        self.source, self.output = source, output

    def __call__(self) -> None:
        self.output.write_bytes(img2pdf.convert(str(self.source)))


def run(ctx: Context) -> list[Row]:
    logging.getLogger("img2pdf").setLevel(logging.ERROR)  # its notes on alpha channels
    files = corpus.images()
    if ctx.quick:
        files = corpus.pick(files, QUICK_FILES)
    results, refused = [], []
    for item in files:
        log(f".. images: {item.name}")
        try:
            results.append(_measure_image(ctx, item))
        except (DocmillError, img2pdf.ImageOpenError, ValueError, OSError) as error:
            status = getattr(error, "status", type(error).__name__)
            refused.append(f"{item.name} ({status})")
    return _rows(ctx, results, refused)


def _measure_image(ctx: Context, item: CorpusFile) -> ImageResult:
    ours = OpRunner(ctx, "image_to_pdf", [item.path])
    folder = ctx.fresh_dir("img2pdf")
    library = LibraryConversion(item.path, folder / "library.pdf")
    program = tool(["img2pdf", item.path, "-o", folder / "program.pdf"])
    ours()  # a refused image raises here, before anything is timed
    library()
    # The program on its own: a process start just before a 1 ms conversion slows it down.
    mine, theirs = measure_pair(ours, library, ctx.runs * LIBRARY_RUNS_FACTOR)
    program_time = measure(program, ctx.runs)
    [output] = ours.outputs
    result = ImageResult(
        file=item, ours=mine.median, library=theirs.median, program=program_time.median,
        same_pages=_pages(output) == _pages(library.output),
        jpeg_identical=_jpeg_identical(item.path, output) if item.kind == "image/jpeg" else None,
    )
    ours.discard()
    return result


def _pages(path: Path) -> int:
    with pikepdf.open(path) as pdf:
        return len(pdf.pages)


def _jpeg_identical(source: Path, output: Path) -> bool:
    """True if the PDF holds the JPEG file's bytes, unchanged, as a DCT image."""
    data = source.read_bytes()
    with pikepdf.open(output) as pdf:
        for page in pdf.pages:
            for image in page.images.values():
                if image.get("/Filter") == pikepdf.Name.DCTDecode and \
                        image.read_raw_bytes() == data:
                    return True
    return False


def _rows(ctx: Context, results: list[ImageResult], refused: list[str]) -> list[Row]:
    same = [r for r in results if r.same_pages]
    differ = [r.file.name for r in results if not r.same_pages]
    ours = sum(r.ours for r in same) / len(same)
    library = sum(r.library for r in same) / len(same)
    program = sum(r.program for r in same) / len(same)
    worst = max(same, key=lambda r: r.ours / r.library)
    over = [f"{r.file.name} {r.ours * 1000:.1f} vs {r.library * 1000:.1f} ms"
            for r in same if r.ours > MAX_RATIO * r.library]
    scope = f"{len(same)} images"
    if differ:
        scope += f"; left out, different documents: {', '.join(differ)}"
    if refused:
        scope += f"; refused: {', '.join(refused)}"
    jpegs = [r for r in results if r.jpeg_identical is not None]
    runs = runs_label(ctx.runs * LIBRARY_RUNS_FACTOR)
    details = {"images": [
        {"file": r.file.name, "docmill_s": r.ours, "img2pdf_library_s": r.library,
         "img2pdf_program_s": r.program, "same_pages": r.same_pages,
         "jpeg_identical": r.jpeg_identical} for r in results
    ]}
    return [
        Row(section="images", level="op", name="Images→PDF, mean per image", unit="ms",
            docmill=ours * 1000, reference=library * 1000, tool="img2pdf library, in-process",
            target=at_most(5, "ratio", MAX_RATIO, f"≤ {MAX_RATIO}× ref"), runs=runs,
            note=scope, details=details),
        Row(section="images", level="op", name="Images→PDF, worst image", unit="ms",
            docmill=worst.ours * 1000, reference=worst.library * 1000,
            tool="img2pdf library, in-process",
            target=at_most(5, "ratio", MAX_RATIO, f"≤ {MAX_RATIO}× ref"), runs=runs,
            note=f"{worst.file.name}; over {MAX_RATIO}×: {'; '.join(over) or 'none'}"),
        Row(section="images", level="op", name="Images→PDF, mean per image", unit="ms",
            docmill=ours * 1000, reference=program * 1000, tool="img2pdf program",
            runs=runs_label(ctx.runs), note="the program's time includes starting Python"),
        Row(section="images", level="quality", name="JPEG bytes identical in the PDF",
            unit="files", docmill=sum(1 for r in jpegs if r.jpeg_identical),
            reference=len(jpegs), tool="JPEG inputs",
            target=at_least(5, "ratio", 1.0, "all"),
            note=", ".join(r.file.name for r in jpegs if not r.jpeg_identical)),
    ]
