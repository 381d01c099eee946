"""`/pdf/convert/from/image`: a PDF with one page per input image, in the order given.

- Formats, recognised by content, never by name: JPEG, PNG, GIF, BMP, TIFF, WEBP.
- Lossless: JPEG bytes (CMYK too) are embedded unchanged, and so are PNG image data and
  CCITT G4 TIFF strips wherever PDF can hold them as they are (img2pdf does this); other
  images are stored losslessly (Flate). Transparency is kept as a soft mask (/SMask).
- Pages: one per image; a TIFF gives one page per frame; an animated GIF or WEBP gives its
  first frame only (a page cannot animate).
- Page size: the image's pixels at its own resolution, or at 96 DPI when it declares none
  or an implausible one (below 10 DPI), as img2pdf does: a 960x480 px image without DPI
  makes a 10x5 inch page.
- EXIF orientation is honoured: rotations through the page's /Rotate, mirrored
  orientations by transposing the pixels.
- Limits: a frame over 100 megapixels is refused (413) from its header, before decoding.
- Damage (442): JPEG and PNG data pass through undecoded, so they are checked first: a
  JPEG's structure (docmill.jpegcheck: truncation, corrupt markers), a PNG's checksums.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import img2pdf
import numpy as np
from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

from docmill.errors import (
    DamagedFileError,
    DocmillError,
    TooLargeError,
    UnsupportedTypeError,
)
from docmill.jpegcheck import JpegDamage, JpegLayout, check_jpeg
from docmill.operation import CommonParams, Operation, OpResult, ResultShape, register

MAX_IMAGE_PIXELS = 100_000_000
MAX_FRAMES = 1000
DEFAULT_DPI = 96.0  # img2pdf's default for images that declare no resolution
MIN_PLAUSIBLE_DPI = 10.0
OUTPUT_NAME = "images.pdf"

# Leading bytes of each accepted format, as Pillow names it.
_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"II+\x00", 0, "TIFF"),  # BigTIFF
    (b"MM\x00+", 0, "TIFF"),
    (b"WEBP", 8, "WEBP"),  # after "RIFF" and the length
)
# Modes img2pdf stores as they are; others are converted to one of these first.
_PDF_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK"}
# img2pdf keeps transparency of these formats only; others go through PNG.
_ALPHA_FORMATS = {"PNG", "GIF", "TIFF"}
_PNG_BIT_DEPTH, _PNG_INTERLACE = 24, 28  # offsets in the file, inside the IHDR chunk
_EXIF_ORIENTATION = 0x0112
_ROTATION_OF_ORIENTATION = {1: 0, 3: 180, 6: 90, 8: 270}
_MIRRORED_ORIENTATIONS = {2, 4, 5, 7}
_MPO_ENTRIES = 0xB002  # MP Entry tag: one entry (size, offset...) per picture
_JPEG_APP2, _JPEG_START_OF_SCAN = 0xE2, 0xDA
_JPEG_COMPONENTS = (1, 3, 4)  # what Pillow opens (L, RGB, CMYK) and PDF holds
# What Pillow raises on a file it recognised but cannot read.
_DAMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError)


class Params(CommonParams):
    """Parameters of `/pdf/convert/from/image`: `url` is one image URL or a comma list."""


@dataclass
class PageSource:
    """What img2pdf reads for one input, and the /Rotate of each page it makes."""

    data: bytes
    rotations: list[int] = field(default_factory=lambda: [0])

    @property
    def page_count(self) -> int:
        return len(self.rotations)


def image_format(data: bytes) -> str:
    """The Pillow format name of an accepted image; 415 for anything else."""
    for signature, offset, name in _SIGNATURES:
        if data[offset : offset + len(signature)] == signature:
            if name == "WEBP" and not data.startswith(b"RIFF"):
                continue
            return name
    if not data:
        raise DamagedFileError("The input image is empty (0 bytes).")
    kind = "a PDF" if b"%PDF" in data[:1024] else "not an image"
    raise UnsupportedTypeError(
        f"The input is {kind}: send JPEG, PNG, GIF, BMP, TIFF or WEBP images."
    )


def prepare_image(path: Path) -> PageSource:
    """Check one image and decide what img2pdf gets: its bytes, or a lossless re-encoding."""
    data = path.read_bytes()
    format_name = image_format(data)
    if format_name == "JPEG" and (source := _plain_jpeg(data)):
        return source
    with open_image(data, format_name) as image:
        frames = _frame_count(image)
        orientations = [_orientation(image) for _ in _each_frame(image, frames)]
        if _needs_reencoding(image, data, frames, orientations):
            return PageSource(data=_reencode(image, frames), rotations=[0] * frames)
        if image.format == "MPO":
            data = _first_mpo_picture(image, data)
    _check_intact(data, format_name)
    return PageSource(
        data=data, rotations=[_ROTATION_OF_ORIENTATION.get(o, 0) for o in orientations]
    )


def _plain_jpeg(data: bytes) -> PageSource | None:
    """A JPEG whose own headers say all `prepare_image` needs; None when Pillow must read it.

    Most photos: reading them with Pillow before img2pdf does costs more than checking them.
    """
    layout = _checked_jpeg(data)
    if layout.width * layout.height > MAX_IMAGE_PIXELS:
        raise _too_large(f"{layout.width}x{layout.height}")
    if (
        layout.multi_picture  # Pillow finds the first picture's end
        or len(layout.exif) > 1  # Pillow joins them
        or layout.precision != 8
        or layout.components not in _JPEG_COMPONENTS
    ):
        return None
    orientation = _exif_orientation(layout.exif[0]) if layout.exif else None
    if orientation is None and layout.xmp:
        return None  # Pillow takes the orientation from XMP then
    if orientation in _MIRRORED_ORIENTATIONS:
        return None  # re-encoded, through Pillow
    return PageSource(data=data, rotations=[_ROTATION_OF_ORIENTATION.get(orientation or 1, 0)])


def _checked_jpeg(data: bytes) -> JpegLayout:
    """The JPEG's layout if its structure is sound (see docmill.jpegcheck), else 442."""
    try:
        return check_jpeg(data)  # decoding to look for damage costs more than converting
    except JpegDamage as exc:
        raise DamagedFileError(f"The JPEG image is damaged and cannot be read ({exc}).") from exc


def _exif_orientation(exif_segment: bytes) -> int | None:
    """The orientation an APP1 EXIF segment gives, as Pillow reads it; None if none."""
    exif = Image.Exif()
    try:
        exif.load(exif_segment)
    except _DAMAGE_ERRORS as exc:
        raise DamagedFileError(f"The JPEG image's EXIF data is damaged ({exc}).") from exc
    if _EXIF_ORIENTATION not in exif:
        return None
    value = exif[_EXIF_ORIENTATION]
    return value if isinstance(value, int) else 1


@contextmanager
def open_image(data: bytes, format_name: str) -> Iterator[Image.Image]:
    """Open with Pillow, reading headers only: too large → 413, unreadable → 442."""
    with warnings.catch_warnings():
        # Our own pixel limit applies; Pillow's warning below its own is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[format_name])
        except Image.DecompressionBombError as exc:
            raise _too_large() from exc
        except (UnidentifiedImageError, *_DAMAGE_ERRORS) as exc:
            raise DamagedFileError(
                f"The {format_name} image is damaged and cannot be read ({exc})."
            ) from exc
        try:
            yield image
        except Image.DecompressionBombError as exc:
            raise _too_large() from exc
        except _DAMAGE_ERRORS as exc:
            raise DamagedFileError(
                f"The {format_name} image is damaged and cannot be read ({exc})."
            ) from exc
        finally:
            image.close()


def _too_large(size: str = "") -> TooLargeError:
    declared = f" (it declares {size} pixels)" if size else ""
    return TooLargeError(
        f"The image is too large{declared}: at most {MAX_IMAGE_PIXELS // 1_000_000} "
        "megapixels per image or frame are accepted."
    )


def _frame_count(image: Image.Image) -> int:
    """Pages this image makes: every TIFF frame, the first frame of anything else."""
    if image.format != "TIFF":
        return 1
    frames = getattr(image, "n_frames", 1)
    if frames > MAX_FRAMES:
        raise TooLargeError(f"The TIFF image has {frames} frames; at most {MAX_FRAMES}.")
    return frames


def _each_frame(image: Image.Image, frames: int) -> Iterator[int]:
    """Seek to each frame in turn, refusing any over the pixel limit."""
    for frame in range(frames):
        image.seek(frame)
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise _too_large(f"{width}x{height}")
        yield frame
    image.seek(0)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of the current frame (1 when absent or unreadable)."""
    if image.format == "PNG":
        # PNG's getexif() decodes the whole image looking for a late eXIf chunk;
        # a conforming eXIf comes before the image data and is already in `info`.
        raw = image.info.get("exif")
        if not raw:
            return 1
        exif = Image.Exif()
        exif.load(raw)
    else:
        exif = image.getexif()
    value = exif.get(_EXIF_ORIENTATION, 1)
    return value if isinstance(value, int) else 1


def _needs_reencoding(
    image: Image.Image, data: bytes, frames: int, orientations: list[int]
) -> bool:
    """True when img2pdf cannot take the file as it is, or would make the wrong pages."""
    if getattr(image, "is_animated", False) and image.format in ("GIF", "WEBP"):
        return True  # img2pdf would make a page of every frame
    if any(o in _MIRRORED_ORIENTATIONS for o in orientations):
        return True  # /Rotate cannot mirror
    return any([_frame_needs_reencoding(image, data) for _ in _each_frame(image, frames)])


def _frame_needs_reencoding(image: Image.Image, data: bytes) -> bool:
    transparent = image.mode in ("LA", "PA", "RGBA") or "transparency" in image.info
    if image.format == "PNG" and not transparent and data[_PNG_INTERLACE] == 0:
        return False  # img2pdf copies the image data as it is, 16-bit samples too
    if image.mode not in _PDF_MODES:
        return True  # 16-bit gray, 32-bit integer, float, YCbCr, LAB...
    if transparent and image.format not in _ALPHA_FORMATS:
        return True
    if image.format == "PNG":
        return transparent and data[_PNG_BIT_DEPTH] > 8  # img2pdf refuses these
    if image.format == "TIFF":
        bits = image.tag_v2.get(TiffImagePlugin.BITSPERSAMPLE, (1,))
        return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    return False


def _reencode(image: Image.Image, frames: int) -> bytes:
    """Decode and store losslessly as PNG (TIFF if several frames), upright, 8 bits."""
    pictures = [_upright_8bit(image) for _ in _each_frame(image, frames)]
    buffer = io.BytesIO()
    dpi = image.info.get("dpi")
    options = {"dpi": dpi} if dpi else {}
    if len(pictures) == 1:
        pictures[0].save(buffer, format="PNG", **options)
    else:
        pictures[0].save(
            buffer,
            format="TIFF",
            compression="tiff_adobe_deflate",
            save_all=True,
            append_images=pictures[1:],
            **options,
        )
    return buffer.getvalue()


def _upright_8bit(image: Image.Image) -> Image.Image:
    """The current frame, EXIF orientation applied, in a mode PNG and PDF both hold."""
    frame = ImageOps.exif_transpose(image) or image.copy()
    if frame.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        samples = np.asarray(frame, dtype=np.uint16)
        return Image.fromarray((samples >> 8).astype(np.uint8), mode="L")
    if frame.mode in ("I", "F"):
        return frame.convert("L")  # clips to 0..255
    if frame.mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return frame
    if frame.mode == "PA" or "transparency" in frame.info or "A" in frame.mode:
        return frame.convert("RGBA")
    return frame.convert("RGB")


def _check_intact(data: bytes, format_name: str) -> None:
    """Read through images embedded without decoding, so damage shows now, not in a viewer.

    img2pdf decodes every other format itself, and fails there if it is damaged.
    """
    if format_name == "JPEG":
        _checked_jpeg(data)
    elif format_name == "PNG":
        with open_image(data, format_name) as image:
            image.verify()  # every chunk's CRC, without decompressing


def _first_mpo_picture(image: Image.Image, data: bytes) -> bytes:
    """The primary picture of a multi-picture JPEG, as a plain JPEG: one page.

    Phones write MPO files (a gain map or depth map after the photo); img2pdf would make
    a page of each picture, or fail. The photo's compressed data is kept unchanged.
    """
    sizes = [entry.get("Size", 0) for entry in image.mpinfo.get(_MPO_ENTRIES, [])]
    if not sizes or not 0 < sizes[0] <= len(data):
        return data
    return _without_mpf_segment(data[: sizes[0]])


def _without_mpf_segment(jpeg: bytes) -> bytes:
    """`jpeg` without its APP2 "MPF" segment, which points at pictures no longer there."""
    kept = [jpeg[:2]]  # SOI
    position = 2
    while position + 4 <= len(jpeg) and jpeg[position] == 0xFF:
        marker = jpeg[position + 1]
        if marker == _JPEG_START_OF_SCAN:
            break
        length = int.from_bytes(jpeg[position + 2 : position + 4], "big")
        segment = jpeg[position : position + 2 + length]
        if not (marker == _JPEG_APP2 and segment[4:8] == b"MPF\x00"):
            kept.append(segment)
        position += 2 + length
    kept.append(jpeg[position:])
    return b"".join(kept)


def page_layout(
    width_px: int, height_px: int, dpi: tuple[float, float]
) -> tuple[float, float, float, float]:
    """img2pdf layout: the image fills a page of its own size at its (sane) resolution."""
    sane = tuple(value if value >= MIN_PLAUSIBLE_DPI else DEFAULT_DPI for value in dpi)
    return img2pdf.default_layout_fun(width_px, height_px, sane)


def write_pdf(sources: list[PageSource], output: Path) -> None:
    """Write every source's pages into one PDF, each page with the /Rotate EXIF asks for."""
    document = _img2pdf_document([source.data for source in sources])
    rotations = [rotation for source in sources for rotation in source.rotations]
    pages = document.writer.pages  # the pikepdf document, not yet saved
    if len(pages) != len(rotations):
        raise DamagedFileError("An input image could not be converted to PDF pages.")
    for page, rotation in zip(pages, rotations, strict=True):
        if rotation:
            page.Rotate = rotation
    with open(output, "wb") as stream:
        document.tostream(stream)


def _img2pdf_document(images: list[bytes]) -> img2pdf.pdfdoc:
    """img2pdf's document before it is saved, so /Rotate costs no second parse and save."""
    try:
        with _quiet_img2pdf():
            return img2pdf.convert_to_docobject(
                images,
                engine=img2pdf.Engine.pikepdf,
                layout_fun=page_layout,
                rotation=img2pdf.Rotation.none,  # per page, see write_pdf
                nodate=True,
            )
    except Exception as exc:  # img2pdf raises many kinds; an image is at fault
        raise DamagedFileError(
            f"{_culprit(images)}is damaged or cannot be converted ({exc})."
        ) from exc


def _culprit(images: list[bytes]) -> str:
    """Which image img2pdf fails on, found by converting each alone (error path only)."""
    if len(images) == 1:
        return "The image "
    for number, image in enumerate(images, start=1):
        try:
            with _quiet_img2pdf():
                img2pdf.convert(image, layout_fun=page_layout, rotation=img2pdf.Rotation.none)
        except Exception:
            return f"Image {number} of {len(images)} "
    return "An input image "


@contextmanager
def _quiet_img2pdf() -> Iterator[None]:
    """img2pdf logs a warning for every soft mask it makes, and Pillow warns on big images."""
    logger = logging.getLogger("img2pdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        logger.setLevel(level)


def prepare_images(inputs: list[Path]) -> list[PageSource]:
    """`prepare_image` for each input; errors say which input when there are several."""
    sources = []
    for number, path in enumerate(inputs, start=1):
        try:
            sources.append(prepare_image(path))
        except DocmillError as exc:
            if len(inputs) > 1:
                message = f"Image {number} of {len(inputs)}: {exc.message}"
                raise type(exc)(message, exc.status) from exc
            raise
    return sources


def convert_images_to_pdf(inputs: list[Path], params: Params, out_dir: Path) -> OpResult:
    sources = prepare_images(inputs)
    output = out_dir / OUTPUT_NAME
    write_pdf(sources, output)
    return OpResult(files=[output], page_count=sum(source.page_count for source in sources))


register(
    Operation(
        name="image_to_pdf",
        paths=("/pdf/convert/from/image",),
        params=Params,
        run=convert_images_to_pdf,
        result=ResultShape.ONE_FILE,
        extension="pdf",
        summary="Convert images (JPEG, PNG, GIF, BMP, TIFF, WEBP) to a PDF, one page each.",
    )
)
