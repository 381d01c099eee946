"""Rendering PDF pages to pixels and writing pixels as PNG, for the PDF-to-image ops.

Resolution: 150 DPI unless the `Resolution` (or `DPI`, `RenderingResolution`) profile says
otherwise, clamped to 10..600 DPI. A page is never rendered to more than 40 megapixels: a
poster-size page gets a lower resolution instead of exhausting memory.

PNG: pages without colour are written as 8-bit grayscale, others as 8-bit RGB. Rows are
left unfiltered, except photo-like rows which get the "Up" filter, and deflated at zlib
level 3. On rendered document pages (flat white, anti-aliased text) this is smaller than
Pillow's PNG writer and 2-3 times faster: its trial of every filter on every row costs more
than it saves on such pages.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pypdfium2 as pdfium

from docmill.errors import DamagedFileError, InvalidParametersError
from docmill.profiles import profile_value

DEFAULT_DPI = 150.0
MIN_DPI = 10.0
MAX_DPI = 600.0
MAX_PAGE_PIXELS = 40_000_000
RESOLUTION_PROFILE_KEYS = ("Resolution", "DPI", "RenderingResolution")

_POINTS_PER_INCH = 72.0
_WHITE = (255, 255, 255, 255)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GRAY, _PNG_RGB = 0, 2
_METRES_PER_INCH = 0.0254
_FILTER_NONE, _FILTER_UP = 0, 2
# zlib level 3, the last without lazy matching: on rendered pages 4 % smaller than level 1
# for 10 % more time; level 4 is another 8 % smaller but takes 1.7 times as long.
_DEFLATE_LEVEL = 3
# A row where fewer than this share of samples repeat their left neighbour is photo-like.
_PHOTO_ROW_REPEATS = 0.5
_BAND_ROWS = 256


@dataclass
class RenderedPage:
    """A rendered page: `pixels` is (height, width) gray or (height, width, 3) RGB uint8."""

    pixels: np.ndarray
    dpi: float  # the resolution used, lower than asked when the pixel cap applied


def resolution_from_profiles(profiles: dict[str, Any], default: float = DEFAULT_DPI) -> float:
    """The rendering resolution in DPI asked for in `profiles`, clamped to MIN_DPI..MAX_DPI."""
    for key in RESOLUTION_PROFILE_KEYS:
        value = profile_value(profiles, key)
        if value is not None and value != "":
            return _clamp_dpi(_parse_dpi(key, value))
    return default


def _parse_dpi(key: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidParametersError(f"Profile '{key}' must be a number of DPI, not {value!r}.")
    try:
        dpi = float(str(value).strip().lower().removesuffix("dpi"))
    except ValueError:
        raise InvalidParametersError(
            f"Profile '{key}' must be a number of DPI, such as 150; got {value!r}."
        ) from None
    if not math.isfinite(dpi):
        raise InvalidParametersError(f"Profile '{key}' must be a finite number, got {value!r}.")
    return dpi


def _clamp_dpi(dpi: float) -> float:
    return min(max(dpi, MIN_DPI), MAX_DPI)


def capped_dpi(width_pt: float, height_pt: float, dpi: float) -> float:
    """`dpi`, lowered if needed so that the page renders to at most MAX_PAGE_PIXELS."""
    pixels = (width_pt * dpi / _POINTS_PER_INCH) * (height_pt * dpi / _POINTS_PER_INCH)
    if pixels <= MAX_PAGE_PIXELS:
        return dpi
    # Rounding of each side up to whole pixels can add a little: keep a margin.
    return dpi * math.sqrt(MAX_PAGE_PIXELS / pixels) * 0.999


@contextmanager
def rendered_page(document: pdfium.PdfDocument, index: int, dpi: float) -> Iterator[RenderedPage]:
    """Render one page (annotations and form fields drawn) on white, gray if colourless.

    The pixels live in PDFium's buffer, freed when the `with` block ends. Call
    `document.init_forms()` before loading any page for form fields to be drawn.
    """
    try:
        page = document[index]
    except pdfium.PdfiumError as exc:
        raise DamagedFileError(f"Page {index} of the PDF is damaged and cannot be read.") from exc
    try:
        width_pt, height_pt = page.get_size()
        used_dpi = capped_dpi(width_pt, height_pt, dpi)
        bitmap = page.render(
            scale=_scale(used_dpi),
            fill_color=_WHITE,
            draw_annots=True,
            may_draw_forms=True,
            rev_byteorder=True,
        )
    finally:
        page.close()
    try:
        rgb = bitmap.to_numpy()
        pixels = rgb[:, :, 0] if is_colourless(rgb) else rgb
        yield RenderedPage(pixels=pixels, dpi=used_dpi)
    finally:
        bitmap.close()


def _scale(dpi: float) -> float:
    # PDFium sizes the bitmap by rounding up: 792 pt * (150 / 72) is 1650.0000000000002 in
    # floating point, hence 1651 pixels. A hair less scale gives 1650, as pdftoppm does.
    return dpi / _POINTS_PER_INCH * (1 - 1e-9)


def is_colourless(rgb: np.ndarray) -> bool:
    """True when every pixel of an (h, w, 3) image has equal R, G and B."""
    # A sparse look first: a page with colour usually shows it within a few rows.
    if not _channels_equal(rgb[:: max(1, rgb.shape[0] // 64)]):
        return False
    return all(_channels_equal(band) for band in _bands(rgb))


def _channels_equal(rgb: np.ndarray) -> bool:
    red, green, blue = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    return bool(np.array_equal(red, green) and np.array_equal(green, blue))


def _bands(pixels: np.ndarray) -> Iterator[np.ndarray]:
    # Work a band of rows at a time: temporaries stay in cache and small on 40 MP pages.
    for start in range(0, pixels.shape[0], _BAND_ROWS):
        yield pixels[start : start + _BAND_ROWS]


def write_png(pixels: np.ndarray, path: Path, dpi: float) -> None:
    """Write (h, w) gray or (h, w, 3) RGB uint8 pixels as a PNG with its DPI recorded."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in (1, 3) or pixels.dtype != np.uint8:
        raise ValueError(f"write_png takes gray or RGB uint8 pixels, not {pixels.shape}")
    header = struct.pack(
        ">IIBBBBB", width, height, 8, _PNG_GRAY if channels == 1 else _PNG_RGB, 0, 0, 0
    )
    pixels_per_metre = round(dpi / _METRES_PER_INCH)
    physical = struct.pack(">IIB", pixels_per_metre, pixels_per_metre, 1)
    image_data = _deflate_rows(pixels.reshape(height, width * channels), channels)
    with open(path, "wb") as handle:
        handle.write(_PNG_SIGNATURE)
        handle.write(_png_chunk(b"IHDR", header))
        handle.write(_png_chunk(b"pHYs", physical))
        handle.write(_png_chunk(b"IDAT", image_data))
        handle.write(_png_chunk(b"IEND", b""))


def _deflate_rows(rows: np.ndarray, bytes_per_pixel: int) -> bytes:
    """PNG image data: each row filtered (see `_filter_band`), all deflated as one stream."""
    compressor = zlib.compressobj(_DEFLATE_LEVEL)
    parts = []
    for start in range(0, rows.shape[0], _BAND_ROWS):
        band = rows[start : start + _BAND_ROWS]
        above = rows[start - 1] if start else None
        parts.append(compressor.compress(_filter_band(band, above, bytes_per_pixel)))
    parts.append(compressor.flush())
    return b"".join(parts)


def _filter_band(band: np.ndarray, above: np.ndarray | None, bytes_per_pixel: int) -> np.ndarray:
    """Rows with their filter byte: "Up" on photo-like rows, "None" on the others.

    Rows of text, rules and flat colour deflate best unfiltered; rows crossing a photo,
    where few samples repeat their left neighbour, deflate best as differences from the
    row above. Cheaper than PNG encoders' usual per-row trial of every filter, and better
    on document pages, where that trial often picks a filter that breaks long repeats.
    """
    filtered = np.empty((band.shape[0], band.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = _FILTER_NONE
    filtered[:, 1:] = band
    # Every 4th sample against its left neighbour estimates the row's share of repeats.
    repeats = band[:, bytes_per_pixel::4] == band[:, :-bytes_per_pixel:4]
    photo_rows = np.flatnonzero(
        np.count_nonzero(repeats, axis=1) < _PHOTO_ROW_REPEATS * repeats.shape[1]
    )
    if photo_rows.size:
        previous = np.empty((photo_rows.size, band.shape[1]), dtype=np.uint8)
        inner = photo_rows > 0
        previous[inner] = band[photo_rows[inner] - 1]
        if not inner.all():  # the band's first row: its "above" is the last row before it
            previous[~inner] = 0 if above is None else above
        filtered[photo_rows, 0] = _FILTER_UP
        filtered[photo_rows, 1:] = band[photo_rows] - previous
    return filtered


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    checksum = zlib.crc32(data, zlib.crc32(kind))
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)
