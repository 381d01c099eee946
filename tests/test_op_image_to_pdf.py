"""`/pdf/convert/from/image` (docmill.ops.image_to_pdf)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageOps

from docmill.errors import DamagedFileError, TooLargeError, UnsupportedTypeError
from docmill.operation import OpResult, ResultShape, get_operation
from docmill.ops import image_to_pdf
from docmill.ops.image_to_pdf import DEFAULT_DPI, Params, convert_images_to_pdf
from tests.conftest import CORPUS, corpus_files

BOMB = CORPUS / "pillow__reallybig.bmp"
IMAGES = [path for path in corpus_files("image/") if path != BOMB]
JPEGS = [path for path in IMAGES if path.read_bytes()[:3] == b"\xff\xd8\xff"]


def convert(paths: list[Path], out_dir: Path) -> OpResult:
    return convert_images_to_pdf(paths, Params(url=",".join(p.name for p in paths)), out_dir)


def frames_of(path: Path) -> int:
    """Pages an image should make: every TIFF frame, one for anything else."""
    with Image.open(path) as image:
        return getattr(image, "n_frames", 1) if image.format == "TIFF" else 1


def page_images(pdf: pikepdf.Pdf) -> list[pikepdf.Stream]:
    """The one image XObject of each page, in page order."""
    return [next(iter(page.Resources.XObject.values())) for page in pdf.pages]


def render(pdf_path: Path, index: int, width_px: int) -> Image.Image:
    """A page rendered by PDFium, /Rotate applied, `width_px` wide once upright."""
    with pdfium.PdfDocument(str(pdf_path)) as document:
        page = document[index]
        return page.render(scale=width_px / page.get_width()).to_pil().convert("RGB")


def mean_difference(one: Image.Image, other: Image.Image) -> float:
    other = other.convert("RGB").resize(one.size)
    return float(np.abs(np.asarray(one, float) - np.asarray(other, float)).mean())


def save(image: Image.Image, path: Path, **options: object) -> Path:
    image.save(path, **options)
    return path


def gradient_rgba() -> Image.Image:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    return Image.fromarray(np.dstack([ramp, ramp[:, ::-1], np.full_like(ramp, 90), ramp]))


@pytest.mark.parametrize("path", IMAGES, ids=lambda path: path.name)
def test_every_corpus_image_converts(path: Path, tmp_path: Path) -> None:
    result = convert([path], tmp_path)
    assert [file.suffix for file in result.files] == [".pdf"]
    assert result.page_count == frames_of(path)
    with pikepdf.open(result.files[0]) as pdf:
        assert len(pdf.pages) == result.page_count
    rendered = render(result.files[0], 0, 64)
    assert rendered.width == 64


@pytest.mark.parametrize("path", JPEGS, ids=lambda path: path.name)
def test_jpeg_bytes_are_embedded_unchanged(path: Path, tmp_path: Path) -> None:
    result = convert([path], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert image.Filter == pikepdf.Name.DCTDecode
        assert image.read_raw_bytes() == path.read_bytes()


def test_cmyk_jpeg_keeps_its_colours(tmp_path: Path) -> None:
    path = CORPUS / "ocrmypdf__baiona_cmyk.jpg"
    result = convert([path], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert image.ColorSpace == pikepdf.Name.DeviceCMYK
    with Image.open(path) as original:
        reference = original.convert("RGB")
    assert mean_difference(render(result.files[0], 0, reference.width), reference) < 8


def test_png_with_alpha_keeps_a_soft_mask(tmp_path: Path) -> None:
    result = convert([CORPUS / "ocrmypdf__baiona_alpha.png"], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert "/SMask" in image


@pytest.mark.parametrize(
    ("name", "options"), [("alpha.webp", {"lossless": True}), ("alpha.tif", {})]
)
def test_other_formats_with_alpha_keep_a_soft_mask(
    name: str, options: dict[str, object], tmp_path: Path
) -> None:
    source = save(gradient_rgba(), tmp_path / name, **options)
    result = convert([source], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        mask = pikepdf.PdfImage(image.SMask).as_pil_image()
    assert np.array_equal(np.asarray(mask), np.asarray(gradient_rgba())[:, :, 3])


def test_exif_orientation_makes_the_page_upright(tmp_path: Path) -> None:
    rendered, upright = converted_and_upright(CORPUS / "pillow__hopper_orientation_6.jpg", tmp_path)
    for angle in (90, 180, 270):  # the check can tell a wrong orientation
        assert mean_difference(rendered.rotate(angle), upright) > 30


@pytest.mark.parametrize("orientation", [2, 4, 5, 7, 8])
def test_every_exif_orientation_is_honoured(orientation: int, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture = gradient_rgba().convert("RGB")
    source = save(picture, tmp_path / "oriented.jpg", exif=exif.tobytes(), quality=95)
    converted_and_upright(source, tmp_path)


def converted_and_upright(source: Path, tmp_path: Path) -> tuple[Image.Image, Image.Image]:
    """The converted page as rendered, and the image turned upright by Pillow: alike."""
    result = convert([source], tmp_path)
    with Image.open(source) as original:
        upright = ImageOps.exif_transpose(original).convert("RGB")
    rendered = render(result.files[0], 0, upright.width)
    assert rendered.size == upright.size
    assert mean_difference(rendered, upright) < 6
    return rendered, upright


def test_page_size_follows_the_image_resolution(tmp_path: Path) -> None:
    with_dpi = CORPUS / "pymupdf__img-tinting.jpg"  # 3360 x 2469 px at 330 DPI
    without_dpi = CORPUS / "ocrmypdf__baiona_color.jpg"  # 640 x 682 px, no DPI
    result = convert([with_dpi, without_dpi], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        sizes = [(float(page.mediabox[2]), float(page.mediabox[3])) for page in pdf.pages]
    assert sizes[0] == pytest.approx((3360 * 72 / 330, 2469 * 72 / 330), abs=0.5)
    assert sizes[1] == pytest.approx((640 * 72 / DEFAULT_DPI, 682 * 72 / DEFAULT_DPI), abs=0.5)


def test_inputs_become_pages_in_order(tmp_path: Path) -> None:
    paths = [
        CORPUS / "ocrmypdf__baiona_color.jpg",
        CORPUS / "unstructured__layout-parser-paper-combined.tiff",
        CORPUS / "pillow__chi.gif",
        CORPUS / "unstructured__bmp_24.bmp",
    ]
    result = convert(paths, tmp_path)
    assert result.page_count == 5
    with pikepdf.open(result.files[0]) as pdf:
        sizes = [(int(image.Width), int(image.Height)) for image in page_images(pdf)]
    assert sizes == [(640, 682), (612, 792), (791, 1024), (320, 240), (200, 200)]


def test_tiff_frames_are_pages_and_g4_passes_through(tmp_path: Path) -> None:
    result = convert([CORPUS / "pillow__pport_g4.tif"], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert image.Filter == pikepdf.Array([pikepdf.Name.CCITTFaxDecode])
        assert (int(image.Width), int(image.Height)) == (2548, 3296)


def test_animated_gif_gives_its_first_frame(tmp_path: Path) -> None:
    path = CORPUS / "pillow__chi.gif"
    result = convert([path], tmp_path)
    assert result.page_count == 1
    with Image.open(path) as original:
        first = original.convert("RGB")
    assert mean_difference(render(result.files[0], 0, first.width), first) < 3


def test_39_megapixel_png_converts_without_decoding(tmp_path: Path) -> None:
    path = CORPUS / "docling__230927_bars.png"  # 10973 x 3570
    result = convert([path], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert (int(image.Width), int(image.Height)) == (10973, 3570)
        assert image.Filter == pikepdf.Name.FlateDecode  # PNG data copied as it is


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16),
        lambda: Image.fromarray(np.linspace(0, 255, 64 * 64, dtype=np.float32).reshape(64, 64)),
        lambda: Image.new("CMYK", (40, 30), (0, 200, 100, 0)),
        lambda: Image.new("1", (70, 30), 1),
    ],
    ids=["16-bit", "float", "cmyk", "bilevel"],
)
def test_unusual_tiff_modes_convert(make, tmp_path: Path) -> None:
    source = save(make(), tmp_path / "odd.tif")
    assert convert([source], tmp_path).page_count == 1


def png_16bit_rgba(width: int, height: int) -> bytes:
    """A 16-bit RGBA PNG (Pillow cannot write one), alpha rising from left to right."""
    samples = np.zeros((height, width, 4), dtype=">u2")
    samples[:, :, 0] = 40000
    samples[:, :, 3] = np.linspace(0, 65535, width, dtype=np.uint16)
    rows = b"".join(b"\x00" + row.tobytes() for row in samples)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_16_bit_png_with_alpha_converts(tmp_path: Path) -> None:
    source = tmp_path / "rgba16.png"
    source.write_bytes(png_16bit_rgba(30, 20))
    result = convert([source], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert "/SMask" in image


def test_16_bit_gray_png_keeps_its_16_bits(tmp_path: Path) -> None:
    ramp = (np.arange(64 * 64, dtype=np.uint16) * 16).reshape(64, 64)
    source = save(Image.fromarray(ramp), tmp_path / "gray16.png")
    result = convert([source], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert int(image.BitsPerComponent) == 16


def test_multi_picture_jpeg_makes_one_page(tmp_path: Path) -> None:
    picture = gradient_rgba().convert("RGB")
    source = save(
        picture,
        tmp_path / "stereo.jpg",
        format="MPO",
        save_all=True,
        append_images=[picture.transpose(Image.Transpose.FLIP_TOP_BOTTOM)],
    )
    result = convert([source], tmp_path)
    assert result.page_count == 1
    with pikepdf.open(result.files[0]) as pdf:
        (image,) = page_images(pdf)
        assert image.Filter == pikepdf.Name.DCTDecode


def test_decompression_bomb_is_413(tmp_path: Path) -> None:
    with pytest.raises(TooLargeError) as caught:
        convert([BOMB], tmp_path)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    "path",
    [CORPUS / "ocrmypdf__vector.pdf", CORPUS / "tika__testRTFVarious.rtf"],
    ids=["pdf", "rtf"],
)
def test_non_images_are_415(path: Path, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        convert([path], tmp_path)
    assert caught.value.status == 415


def test_text_named_like_an_image_is_415(tmp_path: Path) -> None:
    source = tmp_path / "photo.jpg"
    source.write_text("not a picture at all")
    with pytest.raises(UnsupportedTypeError):
        convert([source], tmp_path)


def test_type_comes_from_content_not_name(tmp_path: Path) -> None:
    source = tmp_path / "looks-like.gif"
    source.write_bytes((CORPUS / "ocrmypdf__baiona_color.jpg").read_bytes())
    result = convert([source], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        assert page_images(pdf)[0].Filter == pikepdf.Name.DCTDecode


@pytest.mark.parametrize("name", ["photo.jpg", "photo.png", "photo.gif", "photo.webp"])
def test_truncated_images_are_442(name: str, tmp_path: Path) -> None:
    with Image.open(CORPUS / "ocrmypdf__baiona_color.jpg") as photo:
        whole = save(photo, tmp_path / name)
    data = whole.read_bytes()
    damaged = tmp_path / f"damaged-{name}"
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(DamagedFileError) as caught:
        convert([damaged], tmp_path)
    assert caught.value.status == 442


def photo_jpeg(path: Path, **options: object) -> Path:
    with Image.open(CORPUS / "ocrmypdf__baiona_color.jpg") as photo:
        return save(photo.resize((160, 170)), path, format="JPEG", **options)


def scan_data_start(data: bytes) -> int:
    """Where the first scan's compressed data begins, past its SOS segment."""
    sos = data.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")


@pytest.mark.parametrize("options", [{}, {"progressive": True}], ids=["baseline", "progressive"])
@pytest.mark.parametrize("cut", [0.05, 0.3, 0.7, 0.99])
def test_jpegs_cut_anywhere_are_442(options: dict[str, object], cut: float, tmp_path: Path) -> None:
    data = photo_jpeg(tmp_path / "whole.jpg", **options).read_bytes()
    damaged = tmp_path / "cut.jpg"
    damaged.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(DamagedFileError) as caught:
        convert([damaged], tmp_path)
    assert caught.value.status == 442


def test_jpeg_missing_its_end_marker_is_442(tmp_path: Path) -> None:
    damaged = tmp_path / "no-eoi.jpg"
    damaged.write_bytes((CORPUS / "pymupdf__img-tinting.jpg").read_bytes()[:-2])
    with pytest.raises(DamagedFileError, match="truncated"):
        convert([damaged], tmp_path)


def test_corrupt_marker_in_jpeg_scan_is_442(tmp_path: Path) -> None:
    data = (CORPUS / "pydocx__jpeg420exif.jpg").read_bytes()
    middle = (scan_data_start(data) + len(data)) // 2
    damaged = tmp_path / "corrupt.jpg"
    damaged.write_bytes(data[:middle] + b"\xff\xc8" + data[middle + 2 :])
    with pytest.raises(DamagedFileError) as caught:
        convert([damaged], tmp_path)
    assert caught.value.status == 442


def test_jpeg_bytes_after_eoi_are_tolerated_and_kept(tmp_path: Path) -> None:
    data = (CORPUS / "ocrmypdf__baiona_color.jpg").read_bytes() + b"\x00trailing\xff" * 20
    source = tmp_path / "trailing.jpg"
    source.write_bytes(data)
    result = convert([source], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        assert page_images(pdf)[0].read_raw_bytes() == data


def test_plain_jpeg_needs_no_pillow_before_img2pdf(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Checked, measured and oriented from its own headers: Pillow's reading would double
    the time a photo takes."""

    def no_pillow(*args: object) -> None:
        raise AssertionError("opened with Pillow")

    monkeypatch.setattr(image_to_pdf, "open_image", no_pillow)
    result = convert([CORPUS / "pillow__hopper_orientation_6.jpg"], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        assert int(pdf.pages[0].Rotate) == 90


def test_xmp_orientation_is_honoured(tmp_path: Path) -> None:
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
        b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
        b' tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
    )
    source = photo_jpeg(tmp_path / "xmp.jpg", xmp=packet)
    result = convert([source], tmp_path)
    with pikepdf.open(result.files[0]) as pdf:
        assert int(pdf.pages[0].Rotate) == 90


def test_jpeg_declaring_too_many_pixels_is_413(tmp_path: Path) -> None:
    data = photo_jpeg(tmp_path / "small.jpg").read_bytes()
    size = data.index(b"\xff\xc0") + 5  # height, then width
    source = tmp_path / "huge.jpg"
    source.write_bytes(data[:size] + b"\xea\x60\xea\x60" + data[size + 4 :])  # 60000 x 60000
    with pytest.raises(TooLargeError, match="60000x60000"):
        convert([source], tmp_path)


def test_multi_picture_jpeg_with_its_first_picture_cut_is_442(tmp_path: Path) -> None:
    picture = gradient_rgba().convert("RGB")
    data = save(
        picture, tmp_path / "stereo.jpg", format="MPO", save_all=True, append_images=[picture]
    ).read_bytes()
    first_end = data.index(b"\xff\xd9") + 2
    damaged = tmp_path / "cut-stereo.jpg"
    damaged.write_bytes(data[: first_end - 40] + data[first_end:])  # the first picture cut
    with pytest.raises(DamagedFileError):
        convert([damaged], tmp_path)


def test_empty_file_is_442(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DamagedFileError):
        convert([empty], tmp_path)


def test_error_names_the_failing_input(tmp_path: Path) -> None:
    with pytest.raises(TooLargeError, match="Image 2 of 2"):
        convert([CORPUS / "ocrmypdf__baiona_color.jpg", BOMB], tmp_path)


def test_registered_as_one_file() -> None:
    operation = get_operation("image_to_pdf")
    assert operation.paths == ("/pdf/convert/from/image",)
    assert operation.result is ResultShape.ONE_FILE
    assert operation.extension == "pdf"
