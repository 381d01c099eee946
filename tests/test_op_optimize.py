"""Tests of `/pdf/optimize` (docmill.ops.optimize), called directly on real documents.

Synthetic PDFs are built in `tmp_path` around real pictures of the corpus where a test
needs one exact kind of image (CMYK JPEG, bilevel Flate, an image on two pages...).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from pikepdf import Name, PdfImage
from PIL import Image

from docmill.errors import DamagedFileError, InvalidParametersError, PasswordError
from docmill.imagecompare import render_gray, ssim
from docmill.imageplacement import find_image_placements
from docmill.ops import optimize
from docmill.ops.optimize import Params, optimize_pdf
from docmill.pdf import pdfium_document
from tests.conftest import CORPUS, corpus_manifest, manifest_password

CHECK_DPI = 72
PHOTO = CORPUS / "ocrmypdf__baiona_color.jpg"  # 640×682 RGB JPEG
CMYK_PHOTO = CORPUS / "ocrmypdf__baiona_cmyk.jpg"  # 640×682 Adobe (inverted) CMYK JPEG


# -- helpers ---------------------------------------------------------------------------


def run(source: Path, tmp_path: Path, password: str = "", **profiles: object) -> Path:
    out_dir = tmp_path / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = optimize_pdf([source], Params(password=password, profiles=profiles), out_dir)
    assert len(result.files) == 1
    with pikepdf.open(source, password=password) as original:
        assert result.page_count == len(original.pages)
    return result.files[0]


def page_scores(original: Path, output: Path, password: str = "") -> list[float]:
    with (
        pdfium_document(original, password) as before,
        pdfium_document(output, password) as after,
    ):
        assert len(before) == len(after)
        return [
            ssim(render_gray(before[i], CHECK_DPI), render_gray(after[i], CHECK_DPI))
            for i in range(len(before))
        ]


def images_of(path: Path, password: str = "") -> list[dict[str, object]]:
    """Dictionary facts of every image XObject drawn on the pages of a PDF."""
    facts = []
    with pikepdf.open(path, password=password) as pdf:
        for page in pdf.pages:
            for image in page.Resources.XObject.values():
                flate = image.get(Name.Filter) == Name.FlateDecode
                facts.append(
                    {
                        "filter": image.get(Name.Filter),
                        "colorspace": image.get(Name.ColorSpace),
                        "width": int(image.Width),
                        "height": int(image.Height),
                        "bits": int(image.get(Name.BitsPerComponent, 1)),
                        "decode": image.get(Name.Decode),
                        "samples": image.read_bytes() if flate else None,
                    }
                )
    return facts


def image_pdf(
    path: Path,
    data: bytes,
    *,
    width: int,
    height: int,
    drawn: tuple[float, float],
    colorspace: pikepdf.Object | None = Name.DeviceRGB,
    bits: int = 8,
    filter_: pikepdf.Name = Name.FlateDecode,
    **extra: object,
) -> Path:
    """A one-page letter-size PDF showing one image at `drawn` (points) near the top."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(612, 792))
    image = pikepdf.Stream(pdf, data)
    image.Type, image.Subtype = Name.XObject, Name.Image
    image.Width, image.Height, image.Filter = width, height, filter_
    if colorspace is not None:
        image.ColorSpace, image.BitsPerComponent = colorspace, bits
    for key, value in extra.items():
        image[f"/{key}"] = value
    page = pdf.pages[0]
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    w, h = drawn
    page.Contents = pdf.make_stream(f"q {w} 0 0 {h} 72 {720 - h} cm /Im0 Do Q".encode())
    pdf.save(path)
    return path


def photo_pdf(path: Path, drawn: tuple[float, float] = (160, 170)) -> Path:
    """The corpus photo as raw RGB samples (Flate), drawn at `drawn` points."""
    photo = Image.open(PHOTO).convert("RGB")
    return image_pdf(
        path, zlib.compress(photo.tobytes()), width=photo.width, height=photo.height,
        drawn=drawn,
    )


def text_scan_pdf(path: Path) -> Path:
    """An 8-bit gray 'scan' of black bars on white paper, 300 DPI."""
    rng = np.random.default_rng(7)
    page = np.full((900, 750), 245, dtype=np.uint8)
    for row in range(60, 840, 36):
        for start in range(40, 700, 90):
            page[row : row + 14, start : start + rng.integers(30, 80)] = 20
    return image_pdf(
        path, zlib.compress(page.tobytes()), width=750, height=900, drawn=(180, 216),
        colorspace=Name.DeviceGray,
    )


# -- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "profiles",
    [
        {"ImageOptimizationFormat": "PNG"},
        {"JPEGQuality": 0},
        {"JPEGQuality": 101},
        {"JPEGQuality": "high"},
        {"JPEGQuality": 50.5},
        {"JPEGQuality": True},
        {"ResampleImages": "maybe"},
        {"ResamplingResolution": -5},
        {"ResamplingResolution": "dpi"},
        {"GrayscaleImages": 3},
    ],
)
def test_bad_profile_values_are_error_454(profiles: dict[str, object]) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        Params(profiles=profiles)
    assert caught.value.status == 454


def test_profile_names_and_values_are_read_leniently() -> None:
    options = optimize.recompress_options(
        {"imageoptimizationformat": "flate", "jpegquality": "40", "RESAMPLEIMAGES": "false",
         "ResamplingResolution": "96", "grayscaleImages": "True"}
    )
    assert options.image_format is optimize.ImageFormat.FLATE
    assert options.jpeg_quality == 40
    assert options.resample is False
    assert options.resolution == 96
    assert options.grayscale is True
    assert Params(profiles="{'JPEGQuality': 25}").profiles == {"JPEGQuality": 25}


def test_operation_is_declared_once() -> None:
    operation = optimize.OPERATION
    assert operation.paths == ("/pdf/optimize",)
    assert operation.extension == "pdf"
    assert operation.run is optimize_pdf


# -- errors ----------------------------------------------------------------------------


def test_missing_or_wrong_password_is_error_441(tmp_path: Path) -> None:
    source = CORPUS / "pdfplumber__password-example.pdf"
    for password in ("", "not-it"):
        with pytest.raises(PasswordError) as caught:
            run(source, tmp_path, password=password)
        assert caught.value.status == 441


@pytest.mark.parametrize(
    "name",
    ["pdfjs__poppler-742-0-fuzzed.pdf", "pdfplumber__empty.pdf", "docling__word_sample.docx"],
)
def test_damaged_or_foreign_input_is_error_442(tmp_path: Path, name: str) -> None:
    with pytest.raises(DamagedFileError) as caught:
        run(CORPUS / name, tmp_path)
    assert caught.value.status == 442


def test_encrypted_input_stays_encrypted_with_the_same_password(tmp_path: Path) -> None:
    output = run(CORPUS / "pdfplumber__password-example.pdf", tmp_path, password="test")
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(output)
    with pikepdf.open(output, password="test") as pdf:
        assert pdf.is_encrypted and len(pdf.pages) == 4


# -- size and looks --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "most"),
    # pdfsamples__cmyk-image.pdf is left out: its one image is a palette image drawn near
    # its own resolution, which is kept lossless (a JPEG of it fell to SSIM 0.936 at 1024 px).
    [("pdfjs__images.pdf", 0.3), ("docling__redp5110_sampled.pdf", 0.6)],
)
def test_image_heavy_pdfs_shrink_substantially(tmp_path: Path, name: str, most: float) -> None:
    source = CORPUS / name
    output = run(source, tmp_path)
    assert output.stat().st_size <= most * source.stat().st_size


def test_output_is_the_input_when_nothing_can_be_gained(tmp_path: Path) -> None:
    source = CORPUS / "ocrmypdf__jbig2.pdf"  # one JBIG2 image, already compact
    output = run(source, tmp_path)
    assert output.read_bytes() == source.read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "pdfsamples__cmyk-image.pdf",  # Indexed CMYK: Ghostscript blanks this page
        "pdfjs__images.pdf",  # Flate RGB with soft masks, downsampled
        "pdfjs__issue5567.pdf",  # JPEG 2000 scan shown at 72 DPI: needs the retry
        "docling__redp5110_sampled.pdf",
        "pymupdf__test_4034.pdf",
        "unstructured__invalid-pdf-structure-pdfminer-one-page.pdf",
        "pdfplumber__chelsea_pdta.pdf",  # 65 pages, 448 images
    ],
)
def test_every_page_looks_the_same(tmp_path: Path, name: str) -> None:
    source = CORPUS / name
    output = run(source, tmp_path)
    assert min(page_scores(source, output)) >= 0.95


@pytest.mark.parametrize("grayscale", [False, True])
@pytest.mark.parametrize("decode", [[1, 0] * 4, None])
def test_cmyk_jpeg_keeps_its_colours_when_downsampled(
    tmp_path: Path, decode: list[int] | None, grayscale: bool
) -> None:
    # Photoshop-style inverted CMYK JPEG, with the /Decode that undoes it and without.
    extra = {"Decode": pikepdf.Array(decode)} if decode else {}
    source = image_pdf(
        tmp_path / "cmyk.pdf", CMYK_PHOTO.read_bytes(), width=640, height=682,
        drawn=(144, 153), colorspace=Name.DeviceCMYK, filter_=Name.DCTDecode, **extra,
    )
    output = run(source, tmp_path, GrayscaleImages=grayscale)
    (image,) = images_of(output)
    assert image["filter"] == Name.DCTDecode
    assert image["colorspace"] == (Name.DeviceGray if grayscale else Name.DeviceCMYK)
    assert image["width"] < 640  # 320 DPI drawn, so downsampled to about 150
    assert min(page_scores(source, output)) >= 0.95


@pytest.mark.parametrize("as_mask", [False, True])
def test_bilevel_flate_image_becomes_identical_ccitt_g4(tmp_path: Path, as_mask: bool) -> None:
    # A real text page at 300 DPI, thresholded: what a bilevel scan holds.
    with pdfium_document(CORPUS / "pymupdf__mupdf_explored.pdf") as document:
        gray = render_gray(document[20], 300)
    bits = Image.fromarray(gray > 128)
    samples = bits.tobytes()
    kind = {"colorspace": None, "ImageMask": True} if as_mask else {
        "colorspace": Name.DeviceGray, "bits": 1}
    source = image_pdf(
        tmp_path / "bilevel.pdf", zlib.compress(samples), width=bits.width,
        height=bits.height, drawn=(bits.width * 72 / 300, bits.height * 72 / 300), **kind,
    )
    output = run(source, tmp_path)
    with pikepdf.open(output) as pdf:
        image = pdf.pages[0].Resources.XObject.Im0
        assert image.Filter == Name.CCITTFaxDecode
        decoded = PdfImage(image).as_pil_image(apply_decode_array=False, apply_mask=False)
        assert decoded.convert("1").tobytes() == samples  # lossless: the same bits
    assert output.stat().st_size < source.stat().st_size


# -- profiles --------------------------------------------------------------------------


def test_lower_jpeg_quality_makes_a_smaller_file(tmp_path: Path) -> None:
    source = photo_pdf(tmp_path / "photo.pdf")
    sizes = [
        run(source, tmp_path / str(quality), JPEGQuality=quality).stat().st_size
        for quality in (90, 60, 30)
    ]
    assert sizes[0] > sizes[1] > sizes[2]
    assert sizes[0] < source.stat().st_size


def test_grayscale_images_turns_colour_images_gray(tmp_path: Path) -> None:
    source = photo_pdf(tmp_path / "photo.pdf")
    (colour,) = images_of(run(source, tmp_path / "colour"))
    (gray,) = images_of(run(source, tmp_path / "gray", GrayscaleImages=True))
    assert colour["colorspace"] == Name.DeviceRGB
    assert gray["colorspace"] == Name.DeviceGray


def test_resampling_follows_resample_images_and_resolution(tmp_path: Path) -> None:
    source = photo_pdf(tmp_path / "photo.pdf", drawn=(96, 102))  # 480 DPI
    widths = {
        label: images_of(run(source, tmp_path / label, **profiles))[0]["width"]
        for label, profiles in {
            "default": {},
            "off": {"ResampleImages": False},
            "100": {"ResamplingResolution": 100},
        }.items()
    }
    assert widths["off"] == 640
    assert widths["default"] == pytest.approx(640 * 150 / 480, abs=1)
    assert widths["100"] == pytest.approx(640 * 100 / 480, abs=1)


def test_flate_format_recompresses_without_loss(tmp_path: Path) -> None:
    x, y = np.meshgrid(np.arange(600), np.arange(400))
    chart = np.dstack([x * 255 // 599, y * 255 // 399, (x + y) * 255 // 998]).astype(np.uint8)
    source = image_pdf(
        tmp_path / "chart.pdf", zlib.compress(chart.tobytes()), width=600, height=400,
        drawn=(300, 200),  # 144 DPI: not resampled
    )
    output = run(source, tmp_path, ImageOptimizationFormat="Flate")
    (image,) = images_of(output)
    assert image["filter"] == Name.FlateDecode
    assert image["samples"] == chart.tobytes()
    assert output.stat().st_size < source.stat().st_size / 2


def test_fax_format_makes_scans_black_and_white(tmp_path: Path) -> None:
    source = text_scan_pdf(tmp_path / "scan.pdf")
    output = run(source, tmp_path, ImageOptimizationFormat="Fax")
    (image,) = images_of(output)
    assert image["filter"] == Name.CCITTFaxDecode and image["bits"] == 1
    assert min(page_scores(source, output)) >= 0.95


# -- placement and the safety net ------------------------------------------------------


def test_image_resolution_comes_from_its_largest_placement(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    image = pikepdf.Stream(pdf, bytes(300 * 300))
    image.Type, image.Subtype, image.Width, image.Height = Name.XObject, Name.Image, 300, 300
    image.ColorSpace, image.BitsPerComponent = Name.DeviceGray, 8
    # A form that draws the image in a 1×1 unit square scaled by 2: drawn from two pages.
    form = pdf.make_stream(b"q 2 0 0 2 0 0 cm /Im0 Do Q")
    form.Type, form.Subtype, form.BBox = Name.XObject, Name.Form, [0, 0, 2, 2]
    form.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    for size in (36, 72):  # the image is 72 and 144 pt wide: 300 and 150 DPI
        pdf.add_blank_page()
        page = pdf.pages[-1]
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Fm0=form))
        page.Contents = pdf.make_stream(f"q {size} 0 0 {size} 10 10 cm /Fm0 Do Q".encode())
    placements = find_image_placements(pdf)
    use = placements.uses[image.objgen]
    assert use.pages == {0: pytest.approx(300), 1: pytest.approx(150)}
    assert use.dpi == pytest.approx(150)
    assert not placements.unsafe


def test_pages_that_look_different_get_their_original_images_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(optimize, "MIN_PAGE_SSIM", 1.01)  # no lossy change can pass
    source = photo_pdf(tmp_path / "photo.pdf", drawn=(96, 102))
    (before,) = images_of(source)
    (after,) = images_of(run(source, tmp_path))
    assert after == before


def test_signed_document_is_returned_unchanged(tmp_path: Path) -> None:
    source = CORPUS / "pdfplumber__federal-register-2020-17221.pdf"
    assert run(source, tmp_path).read_bytes() == source.read_bytes()


def test_pdfa1_output_keeps_pdf_1_4_structure(tmp_path: Path) -> None:
    output = run(CORPUS / "pdfsamples__crazyones-pdfa.pdf", tmp_path)
    with pikepdf.open(output) as pdf:
        assert pdf.pdf_version == "1.4"
        assert pdf.open_metadata().pdfa_status == "1B"
        assert not any(obj.get(Name.Type) == Name.ObjStm for obj in pdf.objects
                       if isinstance(obj, pikepdf.Stream))


# -- the whole corpus ------------------------------------------------------------------


def test_every_corpus_pdf_optimizes_or_fails_cleanly(tmp_path: Path) -> None:
    """All readable PDFs: same page count, never larger. Damaged ones: error 442."""
    total_in = total_out = 0
    for row in corpus_manifest():
        if row["kind"] != "pdf":
            continue
        source = CORPUS / row["file"]
        work = tmp_path / row["file"]
        if row["pages"] == "unreadable":
            with pytest.raises(DamagedFileError):
                run(source, work)
            continue
        output = run(source, work, password=manifest_password(row))
        with pikepdf.open(output, password=manifest_password(row)) as pdf:
            assert len(pdf.pages) == int(row["pages"]), row["file"]
        assert output.stat().st_size <= source.stat().st_size, row["file"]
        total_in += source.stat().st_size
        total_out += output.stat().st_size
    assert total_out <= 0.70 * total_in
