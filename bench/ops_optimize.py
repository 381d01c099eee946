"""Optimize, op level: docmill's `optimize` against Ghostscript /ebook and qpdf, on every
readable corpus PDF.

Size: total output bytes over total input bytes, each tool's outputs as it wrote them
(Ghostscript writes a blank page for an input it cannot read; that counts as written).
Looks: every page of docmill's and of Ghostscript's outputs against the input, all rendered
by poppler (a renderer the optimizer does not use for its own check) in gray at 1024 pixels
on the long side, and scored by SSIM. Time: the sum over files of each tool's median.

The references take far longer than docmill (Ghostscript about 25-40 s over the corpus
here), so each file gets `heavy_runs` runs, after one warm-up of each tool on a small file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench import corpus, quality
from bench.context import Context, clear
from bench.corpus import CorpusFile
from bench.docmill_ops import OpRunner
from bench.rows import Row, at_least, at_most, runs_label
from bench.timing import measure_alternating, run_tool, tool

QUICK_FILES = ("docling__redp5110_sampled.pdf", "pdfjs__images.pdf", "pdfjs__tracemonkey.pdf",
               "pdfplumber__password-example.pdf", "pdfjs__prefilled_f1040.pdf")
WARM_UP_FILE = "pdfsamples__crazyones-pdfa.pdf"
MIN_SSIM = 0.95
COMPARE_PIXELS = 1024  # long side of the renders compared
RENDER_CHUNK = 50  # pages rendered at a time, to bound the scratch space


def gs_command(item: CorpusFile, output: Path) -> list[str | Path]:
    password = [f"-sPDFPassword={item.password}"] if item.password else []
    return ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite",
            "-dPDFSETTINGS=/ebook", *password, f"-sOutputFile={output}", item.path]


def qpdf_command(item: CorpusFile, output: Path) -> list[str | Path]:
    password = [f"--password={item.password}"] if item.password else []
    return ["qpdf", *password, "--object-streams=generate", "--compress-streams=y",
            "--recompress-flate", "--compression-level=9", "--optimize-images", item.path,
            output]


@dataclass
class FileResult:
    file: CorpusFile
    seconds: dict[str, float]  # tool → median seconds
    sizes: dict[str, int]  # tool → output bytes
    ssim: dict[str, float]  # tool → lowest page SSIM against the input


def run(ctx: Context) -> list[Row]:
    _warm_up(ctx)
    results, failures = corpus.measure_pdfs(
        ctx.quick, QUICK_FILES, "optimize", lambda item: _measure_file(ctx, item)
    )
    return _rows(ctx, results, failures)


def _warm_up(ctx: Context) -> None:
    [item] = corpus.pick(corpus.readable_pdfs(), (WARM_UP_FILE,)) or corpus.readable_pdfs()[:1]
    folder = ctx.fresh_dir("optimize-warm-up")
    OpRunner(ctx, "optimize", [item.path], password=item.password)()
    run_tool(gs_command(item, folder / "gs.pdf"), check=False)
    run_tool(qpdf_command(item, folder / "qpdf.pdf"), check=False)
    clear(folder)


def _measure_file(ctx: Context, item: CorpusFile) -> FileResult:
    folder = ctx.fresh_dir("optimize")
    ours = OpRunner(ctx, "optimize", [item.path], password=item.password)
    outputs = {"gs": folder / "gs.pdf", "qpdf": folder / "qpdf.pdf"}
    # Not checked: qpdf exits with 3 when it repaired the input, and Ghostscript with 0
    # even when it gave up; what each wrote is what counts.
    works = [ours, tool(gs_command(item, outputs["gs"]), check=False),
             tool(qpdf_command(item, outputs["qpdf"]), check=False)]
    runs = ctx.heavy_runs
    timings = measure_alternating(works, [runs, runs, runs], warm=False)
    [output] = ours.outputs
    sizes = {"docmill": output.stat().st_size,
             **{name: path.stat().st_size if path.exists() else item.size
                for name, path in outputs.items()}}
    result = FileResult(
        file=item,
        seconds=dict(zip(("docmill", "gs", "qpdf"), (t.median for t in timings), strict=True)),
        sizes=sizes, ssim=lowest_ssims(ctx, item, {"docmill": output, "gs": outputs["gs"]}),
    )
    ours.discard()
    clear(folder)
    return result


def lowest_ssims(ctx: Context, item: CorpusFile, outputs: dict[str, Path]) -> dict[str, float]:
    """Each output's lowest page SSIM against the input (1.0: unchanged file; 0.0: pages
    missing or of another size)."""
    original = item.path.read_bytes()
    changed = {name: path for name, path in outputs.items()
               if path.exists() and path.read_bytes() != original}
    lowest = {name: 1.0 for name in outputs}
    for name, path in outputs.items():
        if not path.exists():
            lowest[name] = 0.0
    for first in range(1, item.pages + 1, RENDER_CHUNK) if changed else ():
        last = min(item.pages, first + RENDER_CHUNK - 1)
        before = _render(ctx, item.path, item.password, first, last)
        for name, path in changed.items():
            after = _render(ctx, path, item.password, first, last)
            scores = [quality.ssim(one, other) for one, other in zip(before, after, strict=False)]
            if len(after) != len(before):
                scores.append(0.0)
            lowest[name] = min(lowest[name], *scores)
    return lowest


def _render(ctx: Context, path: Path, password: str, first: int, last: int) -> list[np.ndarray]:
    folder = ctx.fresh_dir("ssim")
    command: list[str | Path] = ["pdftoppm", "-gray", "-scale-to", str(COMPARE_PIXELS),
                                 "-f", str(first), "-l", str(last)]
    if password:
        command += ["-upw", password]
    run_tool([*command, path, folder / "page"])
    pages = [np.asarray(Image.open(page)) for page in sorted(folder.glob("page*.pgm"))]
    clear(folder)
    return pages


def _rows(ctx: Context, results: list[FileResult], failures: list[str]) -> list[Row]:
    total_in = sum(result.file.size for result in results)
    out = {name: sum(r.sizes[name] for r in results) for name in ("docmill", "gs", "qpdf")}
    time = {name: sum(r.seconds[name] for r in results) for name in ("docmill", "gs", "qpdf")}
    larger = [r.file.name for r in results if r.sizes["docmill"] > r.file.size]
    gs_larger = sum(1 for r in results if r.sizes["gs"] > r.file.size)
    worst = {name: min(results, key=lambda r: r.ssim[name]) for name in ("docmill", "gs")}
    below = [r.file.name for r in results if r.ssim["docmill"] < MIN_SSIM]
    gs_below = sum(1 for r in results if r.ssim["gs"] < MIN_SSIM)
    pages = sum(r.file.pages for r in results)
    runs = runs_label(ctx.heavy_runs)
    scope = f"{len(results)} PDFs, {total_in / 1e6:.1f} MB, {pages} pages"
    size_note = f"{scope}; every tool's outputs counted as written"
    if failures:
        size_note += f"; failed: {'; '.join(failures)}"
    details = {"files": [
        {"file": r.file.name, "bytes": r.file.size, "sizes": r.sizes, "seconds": r.seconds,
         "min_ssim": r.ssim} for r in results
    ]}
    return [
        Row(section="optimize", level="op", name="Optimize, corpus: output/input bytes",
            unit="", docmill=out["docmill"] / total_in, reference=out["gs"] / total_in,
            tool="gs /ebook", target=at_most(3, "value", 0.70, "≤ 0.70"), note=size_note,
            details=details),
        Row(section="optimize", level="op", name="Optimize, corpus: output/input bytes",
            unit="", docmill=out["docmill"] / total_in, reference=out["qpdf"] / total_in,
            tool="qpdf --recompress-flate --optimize-images"),
        Row(section="optimize", level="quality", name="Optimize: outputs larger than input",
            unit="files", docmill=len(larger), reference=gs_larger, tool="gs /ebook",
            target=at_most(3, "value", 0, "0"), note=", ".join(larger)),
        Row(section="optimize", level="quality", name="Optimize: lowest page SSIM",
            unit="", docmill=worst["docmill"].ssim["docmill"],
            reference=worst["gs"].ssim["gs"], tool="gs /ebook",
            target=at_least(3, "value", MIN_SSIM, f"≥ {MIN_SSIM} every page"),
            note=f"every page of every changed file against its input, both rendered by "
                 f"pdftoppm in gray at {COMPARE_PIXELS} px; docmill's lowest: "
                 f"{worst['docmill'].file.name}; files under {MIN_SSIM}: docmill "
                 f"{len(below)} ({', '.join(below) or 'none'}), gs {gs_below}"),
        Row(section="optimize", level="op", name="Optimize, corpus: total time", unit="s",
            docmill=time["docmill"], reference=time["gs"], tool="gs /ebook",
            target=at_most(3, "ratio", 0.3, "≤ 0.3× ref"), runs=runs, note=scope),
        Row(section="optimize", level="op", name="Optimize, corpus: total time", unit="s",
            docmill=time["docmill"], reference=time["qpdf"], tool="qpdf", runs=runs),
    ]
