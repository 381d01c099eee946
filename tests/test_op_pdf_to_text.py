"""`/pdf/convert/to/text` (docmill.ops.pdf_to_text) and its layout in docmill.textlayout.

The quality bar is poppler's `pdftotext -layout`: on every corpus PDF with a text layer,
our words and its words must agree with a bag-of-words F1 of at least 0.98 (see
`bag_of_words` for how words are counted).
"""

from __future__ import annotations

import collections
import functools
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from bench.quality import bag_of_words, f1_score, unreadable_share
from docmill import textlayout
from docmill.errors import DamagedFileError, PageRangeError, PasswordError
from docmill.operation import ResultShape, get_operation
from docmill.ops.pdf_to_text import Params, convert_pdf_to_text
from docmill.textlayout import Word, layout_words
from tests.conftest import CORPUS, corpus_manifest, manifest_password

MIN_F1 = 0.98
PDF_ROWS = [row for row in corpus_manifest() if row["kind"] == "pdf"]
READABLE = [row for row in PDF_ROWS if row["pages"].isdigit()]
UNREADABLE = [row for row in PDF_ROWS if not row["pages"].isdigit()]
ENCRYPTED = [row for row in READABLE if manifest_password(row)]

TWO_COLUMNS = CORPUS / "pdfjs__tracemonkey.pdf"  # 14 pages
TABLE = CORPUS / "pdfplumber__nics-background-checks-2015-11.pdf"
PASSWORD_PDF = CORPUS / "pdfplumber__password-example.pdf"  # pw=test, 4 pages

needs_pdftotext = pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler's pdftotext is the reference"
)


def convert(path: Path, out_dir: Path, **params: object) -> tuple[str, int]:
    """The op's text and page count."""
    result = convert_pdf_to_text([path], Params(**params), out_dir)
    [output] = result.files
    assert output.parent == out_dir and output.suffix == ".txt"
    return output.read_text(encoding="utf-8"), result.page_count


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., tuple[str, int]]:
    """Whole-document conversions, done once for the tests that share them."""

    @functools.cache
    def convert_once(name: str, password: str = "") -> tuple[str, int]:
        return convert(CORPUS / name, tmp_path_factory.mktemp("text"), password=password)

    return convert_once


# --- the yardstick (bench/quality.py, shared with `make bench`) -------------------------

# A word is a run of letters, digits and marks: punctuation and symbols separate words, so
# that "z4)" and "z4 )" agree. Bidi controls (which poppler writes around right-to-left
# runs) are dropped, and text is compared after NFKC, so that a ligature or an Arabic
# presentation form equals its letters. A Chinese, Japanese or Korean character counts as
# a word of its own (the two tools disagree on spaces between them), and a word also ends
# where right-to-left script meets anything else (poppler misplaces the boundaries of
# embedded left-to-right runs). The letters of a right-to-left word are compared as a
# multiset: poppler, like PDFium, reverses the letters of a ligature in right-to-left text
# (Arabic lam-alef), which we put back in order.


def pdftotext_layout(path: Path, password: str) -> str:
    command = ["pdftotext", "-layout", "-enc", "UTF-8"]
    if password:
        command += ["-upw", password]
    done = subprocess.run([*command, str(path), "-"], capture_output=True, timeout=120)
    return done.stdout.decode("utf-8", errors="replace")


def test_bag_of_words_counts_words_as_documented() -> None:
    bag = bag_of_words("z4) ﬁne, 中文 \u202bRوم\u202c  x")
    words = {"z4": 1, "fine": 1, "中": 1, "文": 1, "R": 1, "مو": 1, "x": 1}
    assert bag == collections.Counter(words)


# --- quality against poppler ---------------------------------------------------------------


@needs_pdftotext
@pytest.mark.parametrize("row", READABLE, ids=[row["file"] for row in READABLE])
def test_words_agree_with_pdftotext_layout(
    row: dict[str, str], converted: Callable[..., tuple[str, int]]
) -> None:
    path, password = CORPUS / row["file"], manifest_password(row)
    reference = pdftotext_layout(path, password)
    reference_bag = bag_of_words(reference)
    if not reference_bag:
        pytest.skip("no text layer (a scan): pdftotext finds no words")
    if unreadable_share(reference) > 0.2:
        pytest.skip("the text layer is glyph codes, not text, for pdftotext as for PDFium")
    text, page_count = converted(row["file"], password)
    assert page_count == int(row["pages"])
    assert text.count("\f") == page_count
    score = f1_score(bag_of_words(text), reference_bag)
    assert score >= MIN_F1, f"F1 {score:.4f} against pdftotext -layout"


# --- layout ---------------------------------------------------------------------------------


def test_each_page_ends_with_a_form_feed(tmp_path: Path) -> None:
    text, page_count = convert(TWO_COLUMNS, tmp_path)
    assert page_count == 14
    pages = text.split("\f")
    assert len(pages) == 15 and pages[-1] == ""
    assert all(page.strip() for page in pages[:-1])


def test_two_columns_share_lines(tmp_path: Path) -> None:
    text, _ = convert(TWO_COLUMNS, tmp_path, pages="0")
    line = next(line for line in text.splitlines() if "Dynamic languages such as" in line)
    assert "applications such as Google Mail" in line
    # The right column starts at one column, line after line.
    starts = [
        line.index(marker)
        for marker in ("applications such as", "laboration Suite.", "chines must provide")
        for line in text.splitlines()
        if marker in line
    ]
    assert max(starts) - min(starts) <= 2


def test_a_table_row_stays_on_one_line_with_its_columns(tmp_path: Path) -> None:
    text, _ = convert(TABLE, tmp_path)
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    alabama, alaska = rows["Alabama"], rows["Alaska"]
    assert alabama.split()[1:4] == ["18,870", "23,022", "22,650"]
    assert alabama.split()[-1] == "71,137"  # the Totals column, far right
    assert alaska.split()[-1] == "7,095"
    # Right-aligned cells end in one column: 18,870 over 209, 23,022 over 3,062.
    for above, below in (("18,870", "209"), ("23,022", "3,062"), ("71,137", "7,095")):
        end_above = alabama.index(above) + len(above)
        end_below = alaska.index(below) + len(below)
        assert abs(end_above - end_below) <= 1, (above, below)


@pytest.mark.parametrize(
    ("name", "logical", "reversed_"),
    [
        ("pdfjs__issue11656.pdf", "שלום עולם", "םלוע"),
        # One glyph for the word, mapped to its letters in logical order.
        ("pdfsamples__habibi.pdf", "حَبيبي", "يبيبَح"),
        ("docling__right_to_left_01.pdf", "البرمجة", "ةجمربلا"),
        ("docling__right_to_left_01.pdf", "الإنتاجية", "اإلنتاجية"),  # a lam-alef ligature
    ],
)
def test_right_to_left_text_comes_out_in_logical_order(
    tmp_path: Path, name: str, logical: str, reversed_: str
) -> None:
    text, _ = convert(CORPUS / name, tmp_path)
    text = unicodedata.normalize("NFKC", text)
    assert logical in text
    assert reversed_ not in text


def test_glyphs_without_unicode_are_left_out(tmp_path: Path) -> None:
    # habibi.pdf draws a word in a font with no Unicode for its glyphs: PDFium gives
    # their codes (Greek letters, a control code), pdftotext nothing.
    text, _ = convert(CORPUS / "pdfsamples__habibi.pdf", tmp_path)
    assert "habibi" in text
    assert not re.search("[\u0370-\u03ff\x00-\x08]", text)


def test_page_text_keeps_a_place_for_characters_pdfium_leaves_out() -> None:
    # TAMReview's glyph codes 2 and 3 are left out of PDFium's text: a space stands in for
    # each, so that text offsets stay character indices.
    document = pdfium.PdfDocument(CORPUS / "pdfjs__TAMReview.pdf")
    page = document[3]
    text_page = page.get_textpage()
    try:
        count = pdfium_c.FPDFText_CountChars(text_page.raw)
        text, char_of = textlayout._page_text(text_page.raw)
        assert char_of is None and len(text) == count
        unicode_of = functools.partial(pdfium_c.FPDFText_GetUnicode, text_page.raw)
        left_out = [c for c in range(count) if text[c] == " " and unicode_of(c) != 32]
        assert left_out and {unicode_of(c) for c in left_out} <= {2, 3}
        assert all(ord(text[c]) == unicode_of(c) for c in range(count) if text[c] != " ")
    finally:
        text_page.close()
        page.close()
        document.close()


def test_characters_beyond_the_bmp_come_out_whole(tmp_path: Path) -> None:
    text, _ = convert(CORPUS / "tika__testJournalParser.pdf", tmp_path, pages="1")
    assert "\U0001d45b" in text  # mathematical italic n, two UTF-16 units in PDFium
    assert "A system of \U0001d45b MicroStressBots" in " ".join(text.split())


def test_chinese_and_korean_text(tmp_path: Path) -> None:
    chinese, _ = convert(CORPUS / "pdfplumber__issue-67-example.pdf", tmp_path, pages="0")
    korean, _ = convert(CORPUS / "unstructured__korean-text-with-tables.pdf", tmp_path)
    assert "东北电气发展股份有限公司 2018 年第一季度报告全文" in chinese
    assert len(re.findall("[\uac00-\ud7af]", korean)) > 100


def test_layout_of_words_on_a_grid() -> None:
    # Two rows of a table (x in points, baseline y down the page, 10 pt high).
    words = [
        Word("Name", 0, 24, 10, 10),
        Word("Total", 100, 125, 10, 10),
        Word("Ann", 0, 18, 22, 10),
        Word("12", 110, 120, 22, 10),
        Word("x", 124, 129, 44, 10),  # two lines further down: one empty line between
    ]
    for order, word in enumerate(words):
        word.order = order
    lines = layout_words(words).split("\n")
    assert lines[0].startswith("Name") and lines[1].startswith("Ann")
    assert lines[0].index("Total") <= lines[1].index("12") < lines[0].index("Total") + 3
    assert lines[2] == "" and lines[3].strip() == "x"


def test_superscript_joins_its_word_and_line() -> None:
    base = Word("R", 0, 8, 100, 10)
    superscript = Word("2", 8, 12, 96, 7, glued=True)
    after = Word("stimmt", 16, 44, 100, 10)
    for order, word in enumerate((base, superscript, after)):
        word.order = order
    assert layout_words([base, superscript, after]).strip() == "R2 stimmt"


# --- parameters and errors --------------------------------------------------------------------


def test_pages_select_and_order(tmp_path: Path, converted: Callable[..., tuple[str, int]]) -> None:
    whole = converted(TWO_COLUMNS.name)[0].split("\f")
    for name in "abcd":
        (tmp_path / name).mkdir()
    first, count = convert(TWO_COLUMNS, tmp_path / "a", pages="0")
    assert count == 1 and first == whole[0] + "\f"
    last, count = convert(TWO_COLUMNS, tmp_path / "b", pages="!0")
    assert count == 1 and last == whole[13] + "\f"
    middle, count = convert(TWO_COLUMNS, tmp_path / "c", pages="1-2")
    assert count == 2 and middle == whole[1] + "\f" + whole[2] + "\f"
    backwards, count = convert(TWO_COLUMNS, tmp_path / "d", pages="3,0")
    assert count == 2 and backwards == whole[3] + "\f" + whole[0] + "\f"


@pytest.mark.parametrize("pages", ["14", "99", "3-1", "x", "!14"])
def test_bad_page_ranges_are_refused(tmp_path: Path, pages: str) -> None:
    with pytest.raises(PageRangeError):
        convert(TWO_COLUMNS, tmp_path, pages=pages)


def test_output_name_follows_the_name_parameter(tmp_path: Path) -> None:
    result = convert_pdf_to_text([TABLE], Params(name="..\\report.pdf"), tmp_path)
    assert [path.name for path in result.files] == ["report.txt"]


def test_wrong_or_missing_password(tmp_path: Path) -> None:
    with pytest.raises(PasswordError):
        convert(PASSWORD_PDF, tmp_path, password="wrong")
    with pytest.raises(PasswordError):
        convert(PASSWORD_PDF, tmp_path)


@pytest.mark.parametrize("row", ENCRYPTED, ids=[row["file"] for row in ENCRYPTED])
def test_encrypted_pdfs_open_with_their_password(tmp_path: Path, row: dict[str, str]) -> None:
    with pytest.raises(PasswordError):
        convert(CORPUS / row["file"], tmp_path)
    text, page_count = convert(CORPUS / row["file"], tmp_path, password=manifest_password(row))
    assert page_count == int(row["pages"]) and text.count("\f") == page_count


def test_empty_or_foreign_files_are_damaged(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    foreign = tmp_path / "notes.pdf"
    foreign.write_text("just some text, not a PDF")
    for path in (empty, foreign):
        with pytest.raises(DamagedFileError):
            convert(path, tmp_path)


@pytest.mark.parametrize("row", UNREADABLE, ids=[row["file"] for row in UNREADABLE])
def test_unreadable_corpus_pdfs_are_damaged(tmp_path: Path, row: dict[str, str]) -> None:
    with pytest.raises(DamagedFileError):
        convert(CORPUS / row["file"], tmp_path)


@pytest.mark.parametrize("row", READABLE, ids=[row["file"] for row in READABLE])
def test_every_readable_corpus_pdf_converts(
    row: dict[str, str], converted: Callable[..., tuple[str, int]]
) -> None:
    text, page_count = converted(row["file"], manifest_password(row))
    assert page_count == int(row["pages"])
    assert text.count("\f") == page_count and text.endswith("\f")


def test_operation_is_registered() -> None:
    operation = get_operation("pdf_to_text")
    assert operation.paths == ("/pdf/convert/to/text",)
    assert operation.params is Params and operation.run is convert_pdf_to_text
    assert operation.result is ResultShape.ONE_FILE
    assert operation.extension == "txt" and operation.inline_text


def test_long_documents_spread_over_processes_give_the_same_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docmill.ops.pdf_to_text as op

    source = CORPUS / "pymupdf__test-3820.pdf"  # 155 pages: spread over the cores
    params = Params(pages="0-119")
    (tmp_path / "spread").mkdir()
    (tmp_path / "single").mkdir()
    spread = convert_pdf_to_text([source], params, tmp_path / "spread").files[0]
    monkeypatch.setattr(op, "MIN_PAGES_PER_PROCESS", 10**6)
    single = convert_pdf_to_text([source], params, tmp_path / "single").files[0]
    assert spread.read_bytes() == single.read_bytes()
    assert spread.read_text(encoding="utf-8").count("\f") == 120
