"""Page text laid out on a character grid, like `pdftotext -layout`, built on PDFium.

PDFium's text page gives a page's characters in reading order (right-to-left runs in
logical order) with the word and line breaks it inferred; we read it in one call. Asking
PDFium for every character's box is slow from Python, so boxes are asked for sparingly:
a line of one text object set with ordinary spaces is placed as one run of words (where
it starts, its baseline and height, where it ends), other lines run by run or word by
word, and only words that may hide a break (a subscript, a table row drawn in one go)
character by character, split where poppler would split them.

Words are then grouped into lines by baseline, cut into phrases where they stand apart,
and each phrase is put at the column of a grid that its x position asks for, after what
comes before it on its line and the lines next to it, so that columns of text and of
tables line up as on the page. Words that touch (a superscript) are written together,
and empty lines stand for vertical gaps.
"""

from __future__ import annotations

import ctypes
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

_WORD = re.compile(r"\S+")
_LINE = re.compile(r"[^\s](?:[^\r\n]*[^\s])?")  # a line of PDFium's text, trimmed
# PDFium writes U+FFFE for a hyphen that breaks a word at the end of a line.
_PDFIUM_HYPHEN = "\ufffe"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e\s]")
# Spacing accents and their combining forms: ˜ ¨ ´ ` ˆ ¯ ˙ ˘ ˚ ¸ ˛ ˇ
_COMBINING = dict(
    zip(
        "\u02dc\u00a8\u00b4\u0060\u02c6\u00af\u02d9\u02d8\u02da\u00b8\u02db\u02c7",
        "\u0303\u0308\u0301\u0300\u0302\u0304\u0307\u0306\u030a\u0327\u0328\u030c",
        strict=True,
    )
)
_SPACING_ACCENT = re.compile("[" + "".join(_COMBINING) + "]")
_ACCENT_AFTER_LETTER = re.compile(r"([^\W\d_])(" + _SPACING_ACCENT.pattern + r")(?![^\W_])")
_ACCENT_BEFORE_LETTER = re.compile("(" + _SPACING_ACCENT.pattern + r")([^\W\d_])")
_RIGHT_TO_LEFT = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]")

# Distances in units of a word's height (its font's ascent to descent, about 1.1 em).
_JOIN_GAP = 0.03  # words closer than this touch: a superscript, a change of font
_SPACE_GAP = 0.8  # up to this, one space (a phrase); beyond, a column on the grid
_SPLIT_GAP = 0.1  # a gap this wide inside a PDFium word splits it (poppler's rule)
_SIZE_CHANGE = 0.05  # so does a change of size of this much
_SAME_BASELINE_POPPLER = 0.5  # points; so does a change of baseline of more
_MAX_WORD_ADVANCE = 0.9  # wider per character than this and a word is checked for gaps
_MAX_RUN_ADVANCE = 0.6  # same for a line of words, whose spaces are narrow
_LINE_TOLERANCE = 0.5  # baselines closer than this are one line
_SAME_BASELINE = 0.05  # points
_OVERLAP_SLACK = 0.5  # words of one line may overlap this much
_TURN_TOLERANCE = 0.05  # quarter turns
_TURNED_SHIFT = 0.1  # a glyph's box starting this far from its origin is turned
_OPEN_LINES = 3  # a word may join any of the last lines started
_MAX_OVERLAP_CHECKS = 400  # words of a line a newcomer is checked against
_MAX_EMPTY_LINES = 4
_MIN_PITCH_PHRASE = 4  # characters: shorter phrases say little about the pitch
_DEFAULT_PITCH = 5.0  # points per column when no phrase tells
_MIN_PITCH = 0.5
_PITCH_QUANTILE = 0.5
_NEIGHBOUR_LINES = 2  # a phrase starts after those ending left of it this many lines away

TextIndexToChar = Callable[[int], int]

# FPDFText_GetTextObject returning the object's address, comparable, not a new pointer.
_text_object_of = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)(
    ctypes.cast(pdfium_c.FPDFText_GetTextObject, ctypes.c_void_p).value
)


@dataclass(slots=True)
class Word:
    """A word of a page in display space: points, y growing downwards."""

    text: str
    left: float
    right: float
    baseline: float
    height: float  # ascent to descent of its font at its size
    right_to_left: bool = False
    upright: bool = True  # False for a turned or slanted word
    order: int = 0  # position in reading order
    glued: bool = False  # written without a space after the word before it in reading order


def page_layout_text(document: pdfium.PdfDocument, index: int) -> str:
    """The text of page `index`, laid out on a character grid; '' for a page without text."""
    page = pdfium_c.FPDF_LoadPage(document.raw, index)
    if not page:
        return ""
    try:
        words = _page_words(page)
    finally:
        pdfium_c.FPDF_ClosePage(page)
    return layout_words(words)


def _page_words(page: pdfium_c.FPDF_PAGE) -> list[Word]:
    text_page = pdfium_c.FPDFText_LoadPage(page)
    if not text_page:
        return []
    try:
        text, char_of = _page_text(text_page)
        text = _blank_unmapped(text_page, text, char_of)
        return _WordLocator(text_page, _DisplaySpace(page), char_of).words(text)
    finally:
        pdfium_c.FPDFText_ClosePage(text_page)


def _page_text(text_page: pdfium_c.FPDF_TEXTPAGE) -> tuple[str, TextIndexToChar | None]:
    """All the text of a page in one call, and the text-offset-to-char-index map if needed.

    PDFium counts a character beyond the BMP as two characters (its UTF-16 surrogates),
    so the text keeps them apart too (`_join_surrogates` mends words). PDFium also leaves
    characters without Unicode out of the text; on such pages a text offset is not a
    character index, and a function mapping one to the other comes along.
    """
    count = pdfium_c.FPDFText_CountChars(text_page)
    if count <= 0:
        return "", None
    buffer = (ctypes.c_ushort * (count + 1))()
    units = max(pdfium_c.FPDFText_GetText(text_page, 0, count, buffer) - 1, 0)
    text = bytes(buffer)[: 2 * units].decode("utf-16-le", errors="surrogatepass")
    if len(text) != units:  # surrogate pairs were joined: keep one character per unit
        text = "".join(map(chr, buffer[:units]))
    if units == count:
        return text, None
    aligned = _aligned_with_chars(text_page, text, count)
    if aligned is not None:
        return aligned, None
    return text, lambda offset: pdfium_c.FPDFText_GetCharIndexFromTextIndex(text_page, offset)


def _aligned_with_chars(text_page: pdfium_c.FPDF_TEXTPAGE, text: str, count: int) -> str | None:
    """`text` with a space for each character PDFium left out of it, so that a text offset
    is a character index again (and the page can take the fast path); None if PDFium's
    map from one to the other is not the simple one this assumes.

    The characters left out before an offset, its character index minus the offset, only
    grow along the text: halving intervals finds where they do with few calls.
    """
    index_of = pdfium_c.FPDFText_GetCharIndexFromTextIndex
    gaps: list[tuple[int, int]] = []  # (offset, characters left out just before it)

    def find_gaps(low: int, high: int, low_shift: int, high_shift: int) -> None:
        if low_shift == high_shift:
            return
        if high - low == 1:
            gaps.append((high, high_shift - low_shift))
            return
        middle = (low + high) // 2
        middle_shift = index_of(text_page, middle) - middle
        find_gaps(low, middle, low_shift, middle_shift)
        find_gaps(middle, high, middle_shift, high_shift)

    if not text:
        return None
    last = len(text) - 1
    first_shift, last_shift = index_of(text_page, 0), index_of(text_page, last) - last
    if first_shift < 0 or not first_shift <= last_shift <= count - len(text):
        return None
    find_gaps(0, last, first_shift, last_shift)
    pieces, cursor = [" " * first_shift], 0
    for offset, left_out in gaps:
        if left_out < 0:
            return None
        pieces += [text[cursor:offset], " " * left_out]
        cursor = offset
    pieces.append(text[cursor:])
    aligned = "".join(pieces)
    return aligned + " " * (count - len(aligned))


def _blank_unmapped(
    text_page: pdfium_c.FPDF_TEXTPAGE, text: str, char_of: TextIndexToChar | None
) -> str:
    """The text with spaces for characters PDFium could not map to Unicode.

    For a glyph its font gives no Unicode for, PDFium writes the glyph's code instead
    (Greek letters, control codes): noise, which pdftotext leaves out. Only characters
    outside printable ASCII are asked about, one call each: most pages have few.
    """
    has_error = pdfium_c.FPDFText_HasUnicodeMapError
    unmapped = [
        offset
        for offset in (match.start() for match in _NOT_PRINTABLE_ASCII.finditer(text))
        if has_error(text_page, char_of(offset) if char_of else offset) == 1
    ]
    if not unmapped:
        return text
    chars = list(text)
    for offset in unmapped:
        chars[offset] = " "
    return "".join(chars)


def _join_surrogates(text: str) -> str:
    return text.encode("utf-16-le", errors="surrogatepass").decode("utf-16-le", errors="replace")


class _DisplaySpace:
    """Maps PDF user space to display space (y down), honouring the page's /Rotate."""

    def __init__(self, page: pdfium_c.FPDF_PAGE) -> None:
        self.width = pdfium_c.FPDF_GetPageWidthF(page)  # of the page as displayed
        self.height = pdfium_c.FPDF_GetPageHeightF(page)
        self.rotation = pdfium_c.FPDFPage_GetRotation(page) % 4

    def point(self, x: float, y: float) -> tuple[float, float]:
        if self.rotation == 0:
            return x, self.height - y
        if self.rotation == 1:
            return y, x
        if self.rotation == 2:
            return self.width - x, y
        return self.width - y, self.height - x

    def box(self, left: float, bottom: float, right: float, top: float) -> tuple[float, ...]:
        """(left, top, right, bottom) in display space."""
        x0, y0 = self.point(left, bottom)
        x1, y1 = self.point(right, top)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


class _WordLocator:
    """Asks PDFium where the words of one text page are, with as few calls as it can."""

    def __init__(
        self,
        text_page: pdfium_c.FPDF_TEXTPAGE,
        space: _DisplaySpace,
        char_of: TextIndexToChar | None,
    ) -> None:
        self.text_page = text_page
        self._handle = ctypes.cast(text_page, ctypes.c_void_p).value
        self.space = space
        self.char_of = char_of
        self._rect = pdfium_c.FS_RECTF()
        self._rect_ref = ctypes.byref(self._rect)
        self._x, self._y = ctypes.c_double(), ctypes.c_double()
        self._x_ref, self._y_ref = ctypes.byref(self._x), ctypes.byref(self._y)
        self._run_right = ctypes.c_double()
        self._run_right_ref = ctypes.byref(self._run_right)
        self._ignored_ref = ctypes.byref(ctypes.c_double())
        self._matrix = pdfium_c.FS_MATRIX()
        self._matrix_ref = ctypes.byref(self._matrix)

    def words(self, text: str) -> list[Word]:
        """Every word of the page in reading order, numbered in `order`."""
        text = text.replace(_PDFIUM_HYPHEN, "-")
        simple = not (self.char_of or self.space.rotation or _RIGHT_TO_LEFT.search(text))
        words: list[Word] = []
        previous_end = 0
        for start, end, located in self._simple_words(text) if simple else self._any_words(text):
            for word in located:
                if words and word is located[0] and _touching(words[-1], word):
                    word.glued = self._is_inferred_break(text, previous_end, start)
                word.order = len(words)
                words.append(word)
            previous_end = end
        if simple and _SURROGATE.search(text):  # the simple path leaves them apart
            for word in words:
                word.text = _clean(word.text)
        return words

    def _any_words(self, text: str) -> Iterator[tuple[int, int, Sequence[Word]]]:
        for match in _WORD.finditer(text):
            located = self._locate(match.group(), match.start())
            if located:
                yield match.start(), match.end(), located

    def _simple_words(self, text: str) -> Iterator[tuple[int, int, Sequence[Word]]]:
        """`_any_words` for the common page: upright, left to right, each character of the
        text one of PDFium's. Most lines are one text object set with ordinary spaces; such
        a line is placed with four calls as one run of words. This loop is where the time
        goes, hence the inlining."""
        text_page = self.text_page
        count_rects, get_rect = pdfium_c.FPDFText_CountRects, pdfium_c.FPDFText_GetRect
        get_box, get_origin = pdfium_c.FPDFText_GetLooseCharBox, pdfium_c.FPDFText_GetCharOrigin
        box, box_ref = self._rect, self._rect_ref
        x, y, x_ref, y_ref = self._x, self._y, self._x_ref, self._y_ref
        run_right, run_right_ref = self._run_right, self._run_right_ref
        ignored_ref = self._ignored_ref
        page_height = self.space.height
        for line in _LINE.finditer(text):
            start, end = line.span()
            if (
                count_rects(text_page, start, end - start) == 1
                and get_rect(text_page, 0, ignored_ref, ignored_ref, run_right_ref, ignored_ref)
                and get_box(text_page, start, box_ref)
                and get_origin(text_page, start, x_ref, y_ref)
            ):
                left, right, baseline = x.value, run_right.value, page_height - y.value
                top, bottom = page_height - box.top, page_height - box.bottom
                height = bottom - top
                if (
                    top <= baseline <= bottom
                    and abs(left - box.left) <= _TURNED_SHIFT * height
                    and left <= right <= left + height * (_MAX_RUN_ADVANCE * (end - start) + 1)
                ):
                    run = line.group()
                    if "  " in run:
                        run = " ".join(run.split())
                    yield start, end, (Word(run, left, right, baseline, height),)
                    continue
            yield from self._object_runs(text, start, end)

    def _object_runs(
        self, text: str, start: int, end: int
    ) -> Iterator[tuple[int, int, Sequence[Word]]]:
        """A line of several text objects (or one with gaps): a run of words for each
        object, placed with two calls, and words that straddle objects on their own."""
        object_of, handle = _text_object_of, self._handle
        run_start = run_end = 0
        run_object = None
        for word in _WORD.finditer(text, start, end):
            first, end_ = word.span()
            text_object = object_of(handle, first)
            if end_ - first > 1 and object_of(handle, end_ - 1) != text_object:
                text_object = None  # a word of its own
            if text_object is not None and text_object == run_object:
                run_end = end_
                continue
            if run_object is not None:
                yield from self._run(text, run_start, run_end)
            run_start, run_end, run_object = first, end_, text_object
            if text_object is None:
                located = self._simple_word(word.group(), first, end_)
                if located:
                    yield first, end_, located
        if run_object is not None:
            yield from self._run(text, run_start, run_end)

    def _run(self, text: str, start: int, end: int) -> Iterator[tuple[int, int, Sequence[Word]]]:
        """Words of one text object on one line, as one word if set with ordinary spaces."""
        box, x, y = self._rect, self._x, self._y
        if pdfium_c.FPDFText_GetLooseCharBox(
            self.text_page, end - 1, self._rect_ref
        ) and pdfium_c.FPDFText_GetCharOrigin(self.text_page, start, self._x_ref, self._y_ref):
            page_height = self.space.height
            left, right, baseline = x.value, box.right, page_height - y.value
            top, bottom = page_height - box.top, page_height - box.bottom
            height = bottom - top
            if (
                top <= baseline <= bottom
                and left <= right <= left + height * (_MAX_RUN_ADVANCE * (end - start) + 1)
                and (end - start > 1 or abs(left - box.left) <= _TURNED_SHIFT * height)
            ):
                run = text[start:end]
                if " " in run:
                    run = " ".join(run.split())
                yield start, end, (Word(run, left, right, baseline, height),)
                return
        for word in _WORD.finditer(text, start, end):
            located = self._simple_word(word.group(), *word.span())
            if located:
                yield word.start(), word.end(), located

    def _simple_word(self, raw: str, start: int, end: int) -> Sequence[Word]:
        box, x, y = self._rect, self._x, self._y
        last = end - 1
        if not (
            pdfium_c.FPDFText_GetLooseCharBox(self.text_page, last, self._rect_ref)
            and pdfium_c.FPDFText_GetCharOrigin(self.text_page, start, self._x_ref, self._y_ref)
        ):
            return ()
        page_height = self.space.height
        left, right, baseline = x.value, box.right, page_height - y.value
        top, bottom = page_height - box.top, page_height - box.bottom
        height = bottom - top
        upright = (
            top <= baseline <= bottom
            if last > start
            else abs(left - box.left) <= _TURNED_SHIFT * height
        )
        if not upright:
            return self._locate(raw, start)
        if last > start and (
            right - left > height * (_MAX_WORD_ADVANCE * (end - start) + 0.5)
            or right < left
            or self._changes_setting(start, last)
        ):
            return self._split_at_breaks(raw, start)
        return (Word(raw, left, right, baseline, height),)

    def _changes_setting(self, first: int, last: int) -> bool:
        """Whether a word changes text object and, where it does, size or baseline (a
        subscript, say; not a mere change of font, as for a roman full stop after an
        italic word)."""
        object_of, handle = _text_object_of, self._handle
        if object_of(handle, first) == object_of(handle, last):
            return False
        objects = [object_of(handle, char) for char in range(first, last + 1)]
        return any(
            self._setting(first + i) != self._setting(first + i + 1)
            for i in range(len(objects) - 1)
            if objects[i] != objects[i + 1]
        )

    def _setting(self, char: int) -> tuple[float, float]:
        """A character's font size and baseline, rounded to compare."""
        pdfium_c.FPDFText_GetCharOrigin(self.text_page, char, self._x_ref, self._y_ref)
        size = pdfium_c.FPDFText_GetFontSize(self.text_page, char)
        return round(size, 2), round(self._y.value, 1)

    def _is_inferred_break(self, text: str, end: int, start: int) -> bool:
        """Whether PDFium made up the break between two words: a space in the PDF is
        kept even where the glyphs touch."""
        if "\n" in text[end:start]:
            return True
        return bool(pdfium_c.FPDFText_IsGenerated(self.text_page, self._char(end)))

    def _char(self, offset: int) -> int:
        return self.char_of(offset) if self.char_of else offset

    def _box(self, char: int) -> tuple[float, ...] | None:
        if char < 0 or not pdfium_c.FPDFText_GetLooseCharBox(self.text_page, char, self._rect_ref):
            return None
        rect = self._rect
        return self.space.box(rect.left, rect.bottom, rect.right, rect.top)

    def _origin(self, char: int) -> tuple[float, float] | None:
        if char < 0 or not pdfium_c.FPDFText_GetCharOrigin(
            self.text_page, char, self._x_ref, self._y_ref
        ):
            return None
        return self.space.point(self._x.value, self._y.value)

    def _locate(self, raw: str, start: int) -> list[Word]:
        """The word(s) that PDFium's word `raw`, at text offset `start`, makes.

        Two calls place an ordinary word: its first character's origin (left edge and
        baseline) and its last character's box (right edge and height).
        """
        first = self._char(start)
        last = self._char(start + len(raw) - 1) if len(raw) > 1 else first
        end_box = self._box(last)
        origin = self._origin(first) if end_box else None
        if origin is None:
            return []
        x, baseline = origin
        left, top, right, bottom = end_box
        text = _clean(raw)
        if _RIGHT_TO_LEFT.search(text):
            text = _clean(self._restore_glyph_order(raw, start))
            return [self._right_to_left_word(text, first, last, end_box, baseline)]
        if not _is_horizontal(x, baseline, end_box, single=last == first):
            turn = self._turn(first)
            if turn is None:
                return self._slanted_characters(raw, start)
            if turn:
                return [self._turned_word(text, first, last)]
        word = Word(text, x, right, baseline, bottom - top)
        if self._may_hide_breaks(word, first, last):
            return self._split_at_breaks(raw, start)
        return [word]

    def _restore_glyph_order(self, raw: str, start: int) -> str:
        """Undo PDFium's reversal of the characters of one glyph in right-to-left text.

        A ligature's ToUnicode gives its characters in logical order; PDFium reverses
        right-to-left runs character by character, so those come out backwards. They are
        the characters sharing one box."""
        boxes = [self._box(self._char(start + i)) for i in range(len(raw))]
        out: list[str] = []
        i = 0
        while i < len(raw):
            j = i + 1
            while j < len(raw) and boxes[j] is not None and boxes[j] == boxes[i]:
                j += 1
            out.append(raw[i:j][::-1])
            i = j
        return "".join(out)

    def _right_to_left_word(
        self, text: str, first: int, last: int, end_box: tuple[float, ...], baseline: float
    ) -> Word:
        # In logical order the first character is the rightmost one.
        left, top, right, bottom = end_box
        first_box = self._box(first) if first != last else None
        if first_box:
            left, right = min(left, first_box[0]), max(right, first_box[2])
        return Word(text, left, right, baseline, bottom - top, right_to_left=True)

    def _turn(self, char: int) -> int | None:
        """Quarter turns of a character as displayed (0 upright, 1 a quarter turn...);
        None if it is set at another angle."""
        angle = pdfium_c.FPDFText_GetCharAngle(self.text_page, char)
        if angle < 0:
            return 0
        quarters = angle / (math.pi / 2) - self.space.rotation
        turn = round(quarters)
        return turn % 4 if abs(quarters - turn) < _TURN_TOLERANCE else None

    def _turned_word(self, text: str, first: int, last: int) -> Word:
        """A word running up, down or upside down, kept whole where its box is."""
        boxes = [box for box in (self._box(first), self._box(last)) if box]
        left = min(box[0] for box in boxes)
        right = max(box[2] for box in boxes)
        bottom = max(box[3] for box in boxes)
        return Word(text, left, right, bottom, self._font_size(first), upright=False)

    def _font_size(self, char: int) -> float:
        if not pdfium_c.FPDFText_GetMatrix(self.text_page, char, self._matrix_ref):
            return 0.0
        matrix = self._matrix
        scale = abs(matrix.a * matrix.d - matrix.b * matrix.c) ** 0.5
        return pdfium_c.FPDFText_GetFontSize(self.text_page, char) * scale

    def _placed_characters(
        self, raw: str, start: int
    ) -> Iterator[tuple[str, int, tuple[float, ...], tuple[float, float]]]:
        """(text, char index, box, origin) of each character of `raw` that has a place."""
        for i, char_text in enumerate(raw):
            char = self._char(start + i)
            box = self._box(char)
            origin = self._origin(char) if box else None
            if origin is not None:
                yield char_text, char, box, origin

    def _slanted_characters(self, raw: str, start: int) -> list[Word]:
        """A word set at a slant, one word per character as poppler has it, glued to the
        one before (poppler joins those that fall on one line).

        Its boxes are those around slanted glyphs, so sizes come from font size and matrix.
        """
        pieces: list[Word] = []
        for char_text, char, box, origin in self._placed_characters(raw, start):
            size = self._font_size(char)
            piece = Word(char_text, box[0], box[2], origin[1], size, upright=False)
            piece.glued = bool(pieces)
            pieces.append(piece)
        return _cleaned(pieces)

    def _may_hide_breaks(self, word: Word, first: int, last: int) -> bool:
        """Whether a word may hold breaks PDFium missed: it spans several text objects
        (a change of font or size, as around a subscript), or it is wider than its
        letters can be (table cells drawn in one go), or it runs backwards."""
        if len(word.text) < 2:
            return False
        width = word.right - word.left
        if width > word.height * (_MAX_WORD_ADVANCE * len(word.text) + 0.5) or width < 0:
            return True
        return self._changes_setting(first, last)

    def _split_at_breaks(self, raw: str, start: int) -> list[Word]:
        """Split a word, as poppler would, where its characters stand apart or change
        baseline or size; pieces that touch stay glued."""
        pieces: list[Word] = []
        for char_text, _char, box, origin in self._placed_characters(raw, start):
            x, baseline = origin
            right, height = box[2], box[3] - box[1]
            piece = pieces[-1] if pieces else None
            if piece is not None and not _breaks_word(piece, x, baseline, height):
                piece.text += char_text
                piece.right = max(piece.right, right)
                continue
            new = Word(char_text, x, right, baseline, height)
            new.glued = piece is not None and _touching(piece, new)
            pieces.append(new)
        return _cleaned(pieces)


def _is_horizontal(x: float, baseline: float, end_box: tuple[float, ...], *, single: bool) -> bool:
    """Whether a word runs along its baseline, judging by its first character's origin
    and its last character's box: the box spans the baseline, and for a lone character
    starts at its origin (a turned glyph's box does neither)."""
    left, top, _, bottom = end_box
    if single:
        return abs(x - left) <= _TURNED_SHIFT * (bottom - top)
    return top <= baseline <= bottom


def _touching(previous: Word, word: Word) -> bool:
    """Whether a word starts where the one before it ends (a superscript, a font change)."""
    # Overlapping counts: TeX stacks a prime over a subscript.
    touch = previous.left <= word.left and word.left - previous.right < _JOIN_GAP * word.height
    return touch and previous.upright and word.upright


def _cleaned(pieces: list[Word]) -> list[Word]:
    for piece in pieces:
        piece.text = _clean(piece.text)
    return pieces


def _clean(text: str) -> str:
    """Mend surrogate pairs and PDFium's hyphen mark."""
    if _SURROGATE.search(text):
        text = _join_surrogates(text)
    return text.replace(_PDFIUM_HYPHEN, "-")


def _attach_accents(text: str) -> str:
    """A spacing accent beside a letter (TeX's X˜, ˜γ) becomes its combining form on it;
    poppler leaves it alone before a subscript (x˜0), and so do we."""
    text = _ACCENT_AFTER_LETTER.sub(lambda m: m[1] + _COMBINING[m[2]], text)
    return _ACCENT_BEFORE_LETTER.sub(lambda m: m[2] + _COMBINING[m[1]], text)


def _breaks_word(piece: Word, x: float, baseline: float, height: float) -> bool:
    gap = x - piece.right
    size = max(piece.height, height)
    return (
        gap > _SPLIT_GAP * size
        or gap < -size
        or abs(baseline - piece.baseline) > _SAME_BASELINE_POPPLER
        or abs(height - piece.height) > _SIZE_CHANGE * size
    )


def layout_words(words: list[Word]) -> str:
    """Words placed on a character grid: one text line per visual line, columns kept."""
    if not words:
        return ""
    lines = _group_lines(words)
    phrases = [_line_phrases(line) for line in lines]
    _assign_columns(phrases, _char_pitch(phrases))
    out: list[str] = []
    for number, line in enumerate(lines):
        if number:
            out.append("\n" * _line_breaks(lines[number - 1], line))
        out.append(_render_line(phrases[number]))
    out.append("\n")
    return "".join(out)


@dataclass(slots=True)
class _Phrase:
    """Words of a line set with ordinary spaces, from `left` (points) on."""

    text: str
    left: float
    right: float
    column: int = 0  # on the grid


def _line_phrases(line: list[Word]) -> list[_Phrase]:
    """A line cut into phrases where words stand further apart than a wide space."""
    if _is_right_to_left(line):
        return [_right_to_left_phrase(line)]
    first = line[0]
    phrases = [_Phrase(first.text, first.left, first.right)]
    for previous, word in zip(line, line[1:], strict=False):
        phrase = phrases[-1]
        if word.left - previous.right >= _SPACE_GAP * word.height:
            phrases.append(_Phrase(word.text, word.left, word.right))
        else:
            phrase.text += word.text if _glued(previous, word) else " " + word.text
            phrase.right = max(phrase.right, word.right)
    return phrases


def _right_to_left_phrase(line: list[Word]) -> _Phrase:
    """A right-to-left line as one phrase in logical order (as PDFium read it): bidi-aware
    viewers show it right to left, as on the page."""
    logical = sorted(line, key=lambda word: word.order)
    parts = [logical[0].text]
    for previous, word in zip(logical, logical[1:], strict=False):
        parts.append(word.text if _glued(previous, word) else " " + word.text)
    return _Phrase("".join(parts), line[0].left, max(word.right for word in line))


def _char_pitch(phrases: list[list[_Phrase]]) -> float:
    """Points per grid column: the typical width of a character, space included.

    Half the text then takes more room on the grid than on the page; `_assign_columns`
    pushes what follows it along, rather than lose columns to a wider pitch."""
    pitches = sorted(
        ((phrase.right - phrase.left) / len(phrase.text), len(phrase.text))
        for line in phrases
        for phrase in line
        if len(phrase.text) >= _MIN_PITCH_PHRASE and phrase.right > phrase.left
    )
    if not pitches:
        return _DEFAULT_PITCH
    rest = sum(chars for _, chars in pitches) * _PITCH_QUANTILE
    for pitch, chars in pitches:  # the median, weighted by characters
        rest -= chars
        if rest <= 0:
            return max(pitch, _MIN_PITCH)
    return _DEFAULT_PITCH


def _assign_columns(phrases: list[list[_Phrase]], pitch: float) -> None:
    """Give each phrase the grid column its x position asks for, or the first column
    after the phrases that end left of it on its own line and on the lines next to it:
    a column of text or of a table then stays aligned where some lines run long."""
    ordered = sorted(
        ((phrase.left, number, phrase) for number, line in enumerate(phrases) for phrase in line),
        key=lambda item: item[0],
    )
    origin = ordered[0][0]
    last_end: list[tuple[float, int]] = [(-math.inf, 0)] * len(phrases)  # (right, free column)
    for left, number, phrase in ordered:
        first_free = max(
            (
                free
                for right, free in last_end[
                    max(number - _NEIGHBOUR_LINES, 0) : number + _NEIGHBOUR_LINES + 1
                ]
                if right <= left
            ),
            default=0,
        )
        phrase.column = max(round((left - origin) / pitch), first_free)
        last_end[number] = (phrase.right, phrase.column + len(phrase.text) + 1)


def _render_line(phrases: list[_Phrase]) -> str:
    parts: list[str] = []
    cursor = 0
    for phrase in phrases:
        parts.append(" " * (phrase.column - cursor))
        parts.append(phrase.text)
        cursor = phrase.column + len(phrase.text)
    text = "".join(parts)
    return _attach_accents(text) if _SPACING_ACCENT.search(text) else text


def _group_lines(words: list[Word]) -> list[list[Word]]:
    """Words grouped into visual lines by baseline, top to bottom, each sorted by x.

    Most words of a line share its baseline exactly. One that does not (a subscript, a
    big initial, an OCR layer's jitter) joins a line if its baseline is within half a
    line height of the line's, or of the word before it in reading order, and it
    overlaps no word of the line, since words of one line never overlap: this keeps
    close lines of small print apart.
    """
    by_order = {word.order: word for word in words}
    line_of: dict[int, _Line] = {}
    lines: list[_Line] = []
    for word in sorted(words, key=lambda word: word.baseline):
        line = line_of.get(word.order - 1)
        if line is not None:
            before = by_order[word.order - 1]
            usual = abs(word.baseline - before.baseline) < _SAME_BASELINE and (
                word.upright == before.upright
            )  # decided without a call
            if not (usual or line.takes(word, near=before)):
                line = None
        if line is None:
            # Side-by-side columns need not share baselines, so a word's line may not be
            # the last one started.
            line = next((line for line in lines[-_OPEN_LINES:] if line.takes(word)), None)
        if line is None:
            line = _Line(word)
            lines.append(line)
        else:
            line.add(word)
        line_of[word.order] = line
    lines.sort(key=lambda line: line.main.baseline)
    return [sorted(line.words, key=lambda word: word.left) for line in lines]


class _Line:
    __slots__ = ("words", "main")

    def __init__(self, word: Word) -> None:
        self.words = [word]
        self.main = word  # the tallest word: its baseline is the line's own

    def takes(self, word: Word, near: Word | None = None) -> bool:
        """Whether `word` belongs to this line, judged by its baseline against the line's
        (or that of `near`, a word of the line) and by overlaps."""
        near = near or self.main
        if word.upright != near.upright:  # turned text makes lines of its own
            return False
        drop = abs(word.baseline - near.baseline)
        if drop < _SAME_BASELINE:
            return True
        if drop > _LINE_TOLERANCE * max(near.height, word.height):
            return False
        if not word.upright:  # boxes of slanted glyphs overlap anyway
            return True
        if len(self.words) > _MAX_OVERLAP_CHECKS:  # keep a page of jittery words linear
            return True
        # Neighbours may touch or overlap a little (italics, kerning), lines' words a lot.
        slack = _OVERLAP_SLACK * word.height
        return not any(
            word.left + slack < other.right and other.left + slack < word.right
            for other in self.words
        )

    def add(self, word: Word) -> None:
        self.words.append(word)
        if word.height > self.main.height:
            self.main = word


def _line_breaks(above: list[Word], below: list[Word]) -> int:
    """Newlines between two lines: one, plus an empty line per line height of extra gap."""
    size = max(max(word.height for word in above), 1.0)
    gap = below[0].baseline - above[0].baseline
    return min(max(int(gap / size), 1), _MAX_EMPTY_LINES + 1)


def _is_right_to_left(line: list[Word]) -> bool:
    rtl = sum(len(word.text) for word in line if word.right_to_left)
    return rtl > 0 and 2 * rtl >= sum(len(word.text) for word in line)


def _glued(previous: Word, word: Word) -> bool:
    return word.glued and previous.order == word.order - 1
