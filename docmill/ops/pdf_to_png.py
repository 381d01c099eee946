"""`/pdf/convert/to/png`: one PNG per selected page of a PDF.

Pages render with PDFium at 150 DPI by default (profile `Resolution`, `DPI` or
`RenderingResolution`, 10..600), with annotations and form fields drawn on white; a page is
capped at 40 megapixels, its resolution lowered to fit. Outputs are named `page-0001.png`,
`page-0002.png`... in the order the pages were asked for.

The pages of one document are shared out over this process and warm page helpers
(`docmill.spread`), each rendering its share with `render_pages`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from docmill.errors import StorageError
from docmill.operation import CommonParams, Operation, OpResult, ResultShape, register
from docmill.pages import parse_page_ranges
from docmill.pdf import pdfium_document
from docmill.raster import (
    DEFAULT_DPI,
    MAX_DPI,
    MAX_PAGE_PIXELS,
    MIN_DPI,
    rendered_page,
    resolution_from_profiles,
    write_png,
)
from docmill.spread import spread

# A page takes 10-50 ms to render and encode: from 2 pages each, a page helper gains.
MIN_PAGES_PER_PROCESS = 2


class Params(CommonParams):
    """Parameters of `/pdf/convert/to/png`."""

    pages: str = Field(
        "",
        description="0-based page ranges to render, e.g. '0,2-5,7-'; empty renders every page.",
    )
    profiles: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            f"Options. 'Resolution' (or 'DPI', 'RenderingResolution'): rendering resolution, "
            f"default {DEFAULT_DPI:g}, clamped to {MIN_DPI:g}..{MAX_DPI:g}. A page is capped "
            f"at {MAX_PAGE_PIXELS // 1_000_000} megapixels by lowering its resolution."
        ),
    )


def output_name(position: int, total: int) -> str:
    """File name of the `position`-th (0-based) of `total` outputs, sorting in order."""
    width = max(4, len(str(total)))
    return f"page-{position + 1:0{width}d}.png"


def render_pages(
    path: Path,
    password: str,
    indices: list[int],
    dpi: float,
    out_dir: Path,
    positions: list[int] | None = None,
) -> list[Path]:
    """Render pages `indices` of `path` to PNGs in `out_dir`, named by output position.

    With `positions`, only `indices[p]` for each p in `positions` is rendered (a share of
    the work for one process); the document is opened here, so any process can do it.
    """
    positions = list(range(len(indices))) if positions is None else positions
    outputs: list[Path] = []
    with pdfium_document(path, password) as document:
        document.init_forms()
        for position in positions:
            output = out_dir / output_name(position, len(indices))
            with rendered_page(document, indices[position], dpi) as rendered:
                _write(rendered.pixels, output, rendered.dpi)
            outputs.append(output)
    return outputs


def _write(pixels: np.ndarray, output: Path, dpi: float) -> None:
    try:
        write_png(pixels, output, dpi)
    except OSError as exc:
        raise StorageError(f"Could not write {output.name}: {exc.strerror or exc}.") from exc


def convert_pdf_to_png(inputs: list[Path], params: Params, out_dir: Path) -> OpResult:
    dpi = resolution_from_profiles(params.profiles)
    source = inputs[0]
    with pdfium_document(source, params.password) as document:
        indices = parse_page_ranges(params.pages, len(document))
    render = functools.partial(render_pages, source, params.password, indices, dpi, out_dir)
    files = spread(render, len(indices), MIN_PAGES_PER_PROCESS)
    return OpResult(files=files, page_count=len(files))


register(
    Operation(
        name="pdf_to_png",
        paths=("/pdf/convert/to/png",),
        params=Params,
        run=convert_pdf_to_png,
        result=ResultShape.MANY_FILES,
        extension="png",
        summary="Render PDF pages to PNG images, one per page.",
    )
)
