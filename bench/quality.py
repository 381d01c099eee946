"""Yardsticks of output quality: bag-of-words F1 between two texts, SSIM between two renders.

The word yardstick is the one `tests/test_op_pdf_to_text.py` documents: words are runs of
letters, digits and marks after NFKC; bidi controls are dropped; a CJK character is a word
of its own; a word ends where right-to-left script meets anything else; and the letters of
a right-to-left word are compared as a multiset (poppler reverses ligatures there).

SSIM is Wang et al. (2004) with 7x7 uniform windows and sample covariances, as
scikit-image computes it by default; here it runs on poppler's renders, so the check does
not share a renderer with the optimizer's own PDFium-based check.
"""

from __future__ import annotations

import collections
import re
import unicodedata

import numpy as np

_CJK = "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff"
_RTL = "\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc"
_CJK_CHAR = re.compile(f"([{_CJK}])")
_RTL_CHAR = re.compile(f"[{_RTL}]")
_DIRECTION_CHANGE = re.compile(f"(?<=[{_RTL}])(?=[^{_RTL}\\s])|(?<=[^{_RTL}\\s])(?=[{_RTL}])")


class _Separators(dict[int, str]):
    """str.translate table: punctuation, symbols, controls and spaces become spaces,
    format characters (bidi controls) vanish, everything else stays."""

    def __missing__(self, code: int) -> str:
        category = unicodedata.category(chr(code))
        value = "" if category == "Cf" else " " if category[0] in "PSCZ" else chr(code)
        self[code] = value
        return value


_SEPARATORS = _Separators()


def bag_of_words(text: str) -> collections.Counter[str]:
    text = unicodedata.normalize("NFKC", text).translate(_SEPARATORS)
    text = _DIRECTION_CHANGE.sub(" ", _CJK_CHAR.sub(r" \1 ", text))
    return collections.Counter(
        "".join(sorted(word)) if _RTL_CHAR.search(word) else word for word in text.split()
    )


def f1_score(ours: collections.Counter[str], reference: collections.Counter[str]) -> float:
    common = sum((ours & reference).values())
    if not common:
        return 0.0
    precision = common / sum(ours.values())
    recall = common / sum(reference.values())
    return 2 * precision * recall / (precision + recall)


def unreadable_share(text: str) -> float:
    """Share of control and private-use characters among the visible ones: glyph codes of
    fonts without a Unicode mapping, which neither tool can turn into words."""
    visible = [char for char in text if not char.isspace()]
    controls = sum(unicodedata.category(char) in ("Cc", "Co", "Cs") for char in visible)
    return controls / max(len(visible), 1)


_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
_WINDOW = 7


def ssim(first: np.ndarray, second: np.ndarray) -> float:
    """Mean structural similarity of two gray uint8 images of the same shape (1.0 = same)."""
    if first.shape != second.shape:
        return 0.0
    if np.array_equal(first, second):
        return 1.0
    if min(first.shape) < _WINDOW:
        return float(first.mean() == second.mean())
    x = first.astype(np.float64)
    y = second.astype(np.float64)
    mean_x, mean_y = _window_mean(x), _window_mean(y)
    samples = _WINDOW * _WINDOW
    correction = samples / (samples - 1)
    var_x = (_window_mean(x * x) - mean_x * mean_x) * correction
    var_y = (_window_mean(y * y) - mean_y * mean_y) * correction
    cov = (_window_mean(x * y) - mean_x * mean_y) * correction
    numerator = (2 * mean_x * mean_y + _C1) * (2 * cov + _C2)
    denominator = (mean_x**2 + mean_y**2 + _C1) * (var_x + var_y + _C2)
    return float((numerator / denominator).mean())


def _window_mean(image: np.ndarray) -> np.ndarray:
    """Mean over every full 7x7 window (a summed-area table; no padding)."""
    table = np.pad(image, ((1, 0), (1, 0))).cumsum(axis=0).cumsum(axis=1)
    w = _WINDOW
    total = table[w:, w:] - table[:-w, w:] - table[w:, :-w] + table[:-w, :-w]
    return total / (w * w)
