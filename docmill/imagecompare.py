"""Render-and-compare: does a page still look like it did? (PDFium renders, numpy SSIM).

Lossy steps (image recompression, downsampling) check their work here: a page is rendered
before and after at a low resolution and scored with the structural similarity index
(Wang et al. 2004, 7×7 uniform windows and sample covariances as scikit-image computes it).
"""

from __future__ import annotations

import numpy as np
import pypdfium2 as pdfium

_DYNAMIC_RANGE = 255.0
_C1 = (0.01 * _DYNAMIC_RANGE) ** 2
_C2 = (0.03 * _DYNAMIC_RANGE) ** 2
_WINDOW = 7

# Rendering a poster-sized page at the compare DPI would allocate gigabytes; past this many
# pixels the scale is lowered, which still shows a blanked or blackened page plainly.
_MAX_RENDER_PIXELS = 3_000_000


def render_gray(page: pdfium.PdfPage, dpi: float) -> np.ndarray:
    """Render a page in 8-bit grayscale at about `dpi` (less for huge pages)."""
    width, height = page.get_size()
    scale = dpi / 72.0
    pixels = width * height * scale * scale
    if pixels > _MAX_RENDER_PIXELS:
        scale *= (_MAX_RENDER_PIXELS / pixels) ** 0.5
    bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=False)
    try:
        image = bitmap.to_numpy()
        if image.ndim == 3:  # PDFium may still hand back BGR(x)
            image = image[..., :3] @ np.array([0.114, 0.587, 0.299])
        return np.array(image, dtype=np.uint8)
    finally:
        bitmap.close()


def ssim(first: np.ndarray, second: np.ndarray) -> float:
    """Mean structural similarity of two equal-sized 8-bit gray images (1.0 = identical)."""
    if first.shape != second.shape:
        return 0.0
    if min(first.shape) < _WINDOW:
        # Too small for the window: fall back to a plain normalised difference.
        difference = np.abs(first.astype(np.float64) - second.astype(np.float64))
        return 1.0 - float(np.mean(difference)) / _DYNAMIC_RANGE
    windows = (first.shape[0] - _WINDOW + 1) * (first.shape[1] - _WINDOW + 1)
    region = _changed_region(first, second)
    if region is None:
        return 1.0
    # Windows that see no changed pixel score exactly 1; only the rest need computing.
    top, bottom, left, right = region
    scores = _ssim_map(first[top:bottom, left:right], second[top:bottom, left:right])
    unchanged = windows - scores.size
    return float((scores.sum(dtype=np.float64) + unchanged) / windows)


def _changed_region(first: np.ndarray, second: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box of differing pixels, grown by a window, or None if identical."""
    differs = first != second
    rows = np.flatnonzero(differs.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(differs.any(axis=0))
    margin = _WINDOW - 1
    top = max(0, int(rows[0]) - margin)
    bottom = min(first.shape[0], int(rows[-1]) + 1 + margin)
    left = max(0, int(columns[0]) - margin)
    right = min(first.shape[1], int(columns[-1]) + 1 + margin)
    # The window must fit; a region at an edge is widened back inside the image.
    if bottom - top < _WINDOW:
        top = max(0, bottom - _WINDOW)
        bottom = top + _WINDOW
    if right - left < _WINDOW:
        left = max(0, right - _WINDOW)
        right = left + _WINDOW
    return top, bottom, left, right


def _ssim_map(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    x = first.astype(np.float32)
    y = second.astype(np.float32)
    n = float(_WINDOW * _WINDOW)
    # Window sums of 8-bit values and their products are integers below 2**24, so
    # float32 holds them exactly; the combination below needs float64.
    sum_x = _window_sums(x).astype(np.float64)
    sum_y = _window_sums(y).astype(np.float64)
    sum_xx = _window_sums(x * x).astype(np.float64)
    sum_yy = _window_sums(y * y).astype(np.float64)
    sum_xy = _window_sums(x * y).astype(np.float64)
    mean_x = sum_x / n
    mean_y = sum_y / n
    correction = n / (n - 1)
    var_x = correction * (sum_xx / n - mean_x * mean_x)
    var_y = correction * (sum_yy / n - mean_y * mean_y)
    cov_xy = correction * (sum_xy / n - mean_x * mean_y)
    numerator = (2 * mean_x * mean_y + _C1) * (2 * cov_xy + _C2)
    denominator = (mean_x * mean_x + mean_y * mean_y + _C1) * (var_x + var_y + _C2)
    return numerator / denominator


def _window_sums(image: np.ndarray) -> np.ndarray:
    """Sum over every fully-inside 7×7 window (separable running sums)."""
    width = image.shape[1] - _WINDOW + 1
    across = image[:, 0:width].copy()
    for offset in range(1, _WINDOW):
        across += image[:, offset : offset + width]
    height = image.shape[0] - _WINDOW + 1
    down = across[0:height].copy()
    for offset in range(1, _WINDOW):
        down += across[offset : offset + height]
    return down
