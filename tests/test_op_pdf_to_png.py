"""`/pdf/convert/to/png` (docmill.ops.pdf_to_png) and the PNG writer in docmill.raster."""

from __future__ import annotations

import math
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from PIL import Image

from docmill.errors import (
    DamagedFileError,
    InvalidParametersError,
    PageRangeError,
    PasswordError,
)
from docmill.operation import ResultShape, get_operation
from docmill.ops.pdf_to_png import Params, convert_pdf_to_png, output_name, render_pages
from docmill.raster import MAX_PAGE_PIXELS, write_png
from docmill.spread import spread
from tests.conftest import CORPUS, corpus_manifest, manifest_password

# Enough pages to see page order and the split over processes, few enough to stay fast.
PAGES_PER_DOCUMENT = 3
PDF_ROWS = [row for row in corpus_manifest() if row["kind"] == "pdf"]
READABLE = [row for row in PDF_ROWS if row["pages"].isdigit()]
UNREADABLE = [row for row in PDF_ROWS if not row["pages"].isdigit()]
ENCRYPTED = [row for row in READABLE if manifest_password(row)]


def convert(path: Path, out_dir: Path, **params: object) -> list[Path]:
    result = convert_pdf_to_png([path], Params(**params), out_dir)
    assert result.page_count == len(result.files)
    return result.files


def expected_size(path: Path, index: int, dpi: float, password: str = "") -> tuple[int, int]:
    with pdfium.PdfDocument(str(path), password=password or None) as document:
        width, height = document[index].get_size()
    return math.ceil(width * dpi / 72 - 1e-6), math.ceil(height * dpi / 72 - 1e-6)


def decoded(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


def pdfium_pixels(path: Path, index: int, dpi: float) -> np.ndarray:
    """The page as PDFium renders it directly, as RGB."""
    with pdfium.PdfDocument(str(path)) as document:
        document.init_forms()
        bitmap = document[index].render(
            scale=dpi / 72 * (1 - 1e-9),
            fill_color=(255, 255, 255, 255),
            draw_annots=True,
            may_draw_forms=True,
            rev_byteorder=True,
        )
        return bitmap.to_numpy().copy()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("row", READABLE, ids=lambda row: row["file"])
def test_corpus_pdf_renders_one_png_per_page(row: dict[str, str], tmp_path: Path) -> None:
    path = CORPUS / row["file"]
    page_count = int(row["pages"])
    wanted = min(page_count, PAGES_PER_DOCUMENT)
    files = convert(path, tmp_path, pages=f"0-{wanted - 1}", password=manifest_password(row))
    assert [file.name for file in files] == [output_name(i, wanted) for i in range(wanted)]
    for index, file in enumerate(files):
        image = decoded(file)
        assert image.format == "PNG"
        assert image.mode in ("L", "RGB")
        width, height = expected_size(path, index, 150, manifest_password(row))
        if width * height <= MAX_PAGE_PIXELS:
            assert image.size == (width, height)
        else:
            assert image.width * image.height <= MAX_PAGE_PIXELS


@pytest.mark.parametrize("row", UNREADABLE, ids=lambda row: row["file"])
def test_damaged_pdf_is_442(row: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(DamagedFileError) as caught:
        convert(CORPUS / row["file"], tmp_path)
    assert caught.value.status == 442


@pytest.mark.parametrize("row", ENCRYPTED, ids=lambda row: row["file"])
def test_encrypted_pdf_needs_its_password(row: dict[str, str], tmp_path: Path) -> None:
    path = CORPUS / row["file"]
    with pytest.raises(PasswordError) as caught:
        convert(path, tmp_path)
    assert caught.value.status == 441
    with pytest.raises(PasswordError):
        convert(path, tmp_path, password="not-the-password")
    files = convert(path, tmp_path, password=manifest_password(row), pages="0")
    assert decoded(files[0]).size == expected_size(path, 0, 150, manifest_password(row))


def test_empty_user_password_opens_without_one(tmp_path: Path) -> None:
    files = convert(CORPUS / "tika__testPDF_protected.pdf", tmp_path, pages="0-1")
    assert len(files) == 2


def test_default_resolution_is_150_dpi(tmp_path: Path) -> None:
    files = convert(CORPUS / "pdfjs__tracemonkey.pdf", tmp_path, pages="0")
    image = decoded(files[0])
    assert image.size == (1275, 1650)  # US Letter at 150 DPI
    assert image.info["dpi"] == pytest.approx((150, 150), abs=0.5)


@pytest.mark.parametrize(
    ("profiles", "dpi"),
    [
        ({"Resolution": 72}, 72),
        ({"resolution": "300"}, 300),
        ({"DPI": 96.0}, 96),
        ({"RenderingResolution": 200}, 200),
        ('{"Resolution": 1}', 10),  # clamped up
        ("{ 'Resolution': 100000 }", 600),  # clamped down
    ],
)
def test_resolution_profile(profiles: object, dpi: int, tmp_path: Path) -> None:
    path = CORPUS / "pdfjs__tracemonkey.pdf"
    files = convert(path, tmp_path, pages="0", profiles=profiles)
    assert decoded(files[0]).size == expected_size(path, 0, dpi)


def test_empty_resolution_means_the_default(tmp_path: Path) -> None:
    files = convert(CORPUS / "pdfsamples__habibi.pdf", tmp_path, profiles={"DPI": ""})
    assert decoded(files[0]).info["dpi"] == pytest.approx((150, 150), abs=0.5)


@pytest.mark.parametrize("value", ["high", "nan", "inf", True, [150]])
def test_non_numeric_resolution_is_454(value: object, tmp_path: Path) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        convert(CORPUS / "pdfsamples__habibi.pdf", tmp_path, profiles={"Resolution": value})
    assert caught.value.status == 454


def test_poster_page_is_capped_in_pixels(tmp_path: Path) -> None:
    path = CORPUS / "ocrmypdf__enormous.pdf"  # 30 x 30 inches
    files = convert(path, tmp_path, profiles={"Resolution": 600})
    image = decoded(files[0])
    assert image.width * image.height <= MAX_PAGE_PIXELS
    assert image.width == image.height  # the page's shape is kept
    assert image.info["dpi"][0] < 600  # the resolution says what was used


def test_pages_are_rendered_in_the_order_asked(tmp_path: Path) -> None:
    path = CORPUS / "ocrmypdf__cardinal.pdf"  # pages 0 and 2 portrait, 1 and 3 landscape
    files = convert(path, tmp_path, pages="1,0,!0")
    sizes = [decoded(file).size for file in files]
    assert sizes == [
        expected_size(path, 1, 150),
        expected_size(path, 0, 150),
        expected_size(path, 3, 150),
    ]
    assert sizes[0][0] > sizes[0][1] and sizes[1][0] < sizes[1][1]


@pytest.mark.parametrize("pages", ["5", "abc", "3-1", "0-99", "!7"])
def test_bad_pages_are_450(pages: str, tmp_path: Path) -> None:
    with pytest.raises(PageRangeError) as caught:
        convert(CORPUS / "ocrmypdf__cardinal.pdf", tmp_path, pages=pages)
    assert caught.value.status == 450


def test_png_holds_exactly_what_pdfium_rendered(tmp_path: Path) -> None:
    """Gray pages come out as L, colour pages as RGB, both lossless (photo rows included)."""
    path = CORPUS / "pdfplumber__chelsea_pdta.pdf"  # pages full of photos
    files = convert(path, tmp_path, pages="0-1")
    for index, file in enumerate(files):
        rendered = pdfium_pixels(path, index, 150)
        image = decoded(file)
        colourless = bool((rendered == rendered[:, :, :1]).all())
        assert image.mode == ("L" if colourless else "RGB")
        assert np.array_equal(np.asarray(image.convert("RGB")), rendered)


def test_gray_text_page_is_grayscale(tmp_path: Path) -> None:
    path = CORPUS / "pdfjs__tracemonkey.pdf"
    files = convert(path, tmp_path, pages="1")
    image = decoded(files[0])
    assert image.mode == "L"
    assert np.array_equal(np.asarray(image), pdfium_pixels(path, 1, 150)[:, :, 0])


def test_processes_give_the_same_files_as_one_process(tmp_path: Path) -> None:
    path = CORPUS / "pdfjs__tracemonkey.pdf"
    (tmp_path / "spread").mkdir()
    (tmp_path / "serial").mkdir()
    spread = convert(path, tmp_path / "spread", pages="0-5")  # several processes
    serial = render_pages(path, "", list(range(6)), 150.0, tmp_path / "serial")
    assert [file.name for file in spread] == [file.name for file in serial]
    for one, other in zip(spread, serial, strict=True):
        assert one.read_bytes() == other.read_bytes()


def _fail_in_child(positions: list[int]) -> list[Path]:
    if multiprocessing.parent_process() is not None:  # the caller renders a share itself
        raise PageRangeError("raised in a child process")
    return [Path(str(position)) for position in positions]


def test_error_in_a_child_process_reaches_the_caller() -> None:
    with pytest.raises(PageRangeError, match="child process") as caught:
        spread(_fail_in_child, 8, 2)
    assert caught.value.status == 450


def _crash_in_child(positions: list[int]) -> list[Path]:
    if multiprocessing.parent_process() is not None:
        os._exit(3)  # as if PDFium had crashed
    return [Path(str(position)) for position in positions]


def test_crashed_child_process_is_a_damaged_file() -> None:
    with pytest.raises(DamagedFileError, match="helper stopped"):
        spread(_crash_in_child, 8, 2)


ORPHAN_SCRIPT = """
import os, sys, time
from pathlib import Path
from docmill.spread import spread

def render(positions):
    Path(sys.argv[1], str(os.getpid())).touch()
    time.sleep(60)
    return []

spread(render, 8, 2)
"""


def test_children_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_SCRIPT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        children = [int(path.name) for path in tmp_path.iterdir()]
        assert len(children) >= 2
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in children)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (3, 1), (300, 257), (40, 33, 3), (1, 1, 3)])
def test_write_png_round_trips(shape: tuple[int, ...], tmp_path: Path) -> None:
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    pixels[: shape[0] // 2] = 255  # flat rows and noisy rows take different filters
    write_png(pixels, tmp_path / "out.png", 150.0)
    image = decoded(tmp_path / "out.png")
    assert np.array_equal(np.asarray(image), pixels)
    assert image.info["dpi"] == pytest.approx((150, 150), abs=0.5)


def test_write_png_reads_strided_pixels(tmp_path: Path) -> None:
    # PDFium's rows may be padded: the writer must follow the strides.
    padded = np.arange(10 * 16 * 3, dtype=np.uint8).reshape(10, 16, 3)
    pixels = padded[:, :13]
    write_png(pixels, tmp_path / "out.png", 72.0)
    assert np.array_equal(np.asarray(decoded(tmp_path / "out.png")), pixels)


def test_output_names_sort_in_page_order() -> None:
    names = [output_name(position, 12000) for position in range(0, 12000, 997)]
    assert names == sorted(names)
    assert output_name(0, 3) == "page-0001.png"


def test_registered_as_many_files() -> None:
    operation = get_operation("pdf_to_png")
    assert operation.paths == ("/pdf/convert/to/png",)
    assert operation.result is ResultShape.MANY_FILES
    assert operation.extension == "png"
