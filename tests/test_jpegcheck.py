"""docmill.jpegcheck: a JPEG's structure, checked against what Pillow's decoder accepts."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from docmill.jpegcheck import JpegDamage, check_jpeg
from tests.conftest import CORPUS, corpus_files

CORPUS_JPEGS = [p for p in corpus_files("image/") if p.read_bytes()[:3] == b"\xff\xd8\xff"]
PHOTO = CORPUS / "ocrmypdf__baiona_color.jpg"  # baseline, 640 x 682
CMYK = CORPUS / "ocrmypdf__baiona_cmyk.jpg"
SOS, DHT, EOI = 0xDA, 0xC4, b"\xff\xd9"


def encode(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=options.pop("format", "JPEG"), **options)
    return buffer.getvalue()


def small_photo() -> Image.Image:
    with Image.open(PHOTO) as photo:
        return photo.convert("RGB").resize((160, 170))


def pillow_decodes(data: bytes) -> bool:
    """Pillow reads the whole image (what the check replaces)."""
    try:
        with Image.open(io.BytesIO(data), formats=["JPEG"]) as image:
            image.load()
    except (OSError, SyntaxError, ValueError):
        return False
    return True


def header_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, marker code, end) of each segment up to and including the first SOS."""
    segments, position = [], 2
    while True:
        code = data[position + 1]
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        segments.append((position, code, end))
        if code == SOS:
            return segments
        position = end


def scan_data_start(data: bytes) -> int:
    return header_segments(data)[-1][2]


def refused(data: bytes) -> str:
    with pytest.raises(JpegDamage) as caught:
        check_jpeg(data)
    return str(caught.value)


# -- sound files ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS_JPEGS, ids=lambda path: path.name)
def test_corpus_jpegs_are_sound(path: Path) -> None:
    layout = check_jpeg(path.read_bytes())
    with Image.open(path) as image:
        assert (layout.width, layout.height) == image.size
        assert layout.components == len(image.getbands())
    assert layout.precision == 8
    assert not layout.multi_picture


def test_baseline_layout() -> None:
    layout = check_jpeg(PHOTO.read_bytes())
    assert (layout.width, layout.height, layout.components) == (640, 682, 3)
    assert layout.exif == () and not layout.xmp


def test_cmyk_jpeg_is_sound() -> None:
    assert check_jpeg(CMYK.read_bytes()).components == 4


def test_exif_segment_is_kept() -> None:
    layout = check_jpeg((CORPUS / "pillow__hopper_orientation_6.jpg").read_bytes())
    assert len(layout.exif) == 1 and layout.exif[0].startswith(b"Exif\x00\x00")
    exif = Image.Exif()
    exif.load(layout.exif[0])
    assert exif[0x0112] == 6


@pytest.mark.parametrize(
    "options",
    [
        {"progressive": True},
        {"progressive": True, "restart_marker_rows": 1},
        {"restart_marker_blocks": 3},
        {"optimize": True},
        {"quality": 100, "subsampling": 0},
    ],
    ids=["progressive", "progressive-restarts", "restarts", "optimized", "q100-444"],
)
def test_encoder_variants_are_sound(options: dict[str, object]) -> None:
    data = encode(small_photo(), **options)
    layout = check_jpeg(data)
    assert (layout.width, layout.height) == (160, 170)


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_progressive_gray_and_cmyk_are_sound(mode: str) -> None:
    data = encode(small_photo().convert(mode), progressive=True)
    assert check_jpeg(data).components == len(mode)


def test_multi_picture_file_is_sound_and_flagged() -> None:
    photo = small_photo()
    data = encode(photo, format="MPO", save_all=True, append_images=[photo.rotate(90)])
    assert check_jpeg(data).multi_picture


def test_xmp_packet_is_noted() -> None:
    packet = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    assert check_jpeg(encode(small_photo(), xmp=packet)).xmp


def test_bytes_after_eoi_are_ignored_as_pillow_does() -> None:
    data = PHOTO.read_bytes() + b"trailing garbage \xff\xd8\xff\x00" * 50
    assert pillow_decodes(data)
    check_jpeg(data)


def test_stray_bytes_between_segments_are_skipped_as_libjpeg_does() -> None:
    data = PHOTO.read_bytes()
    _, _, end = header_segments(data)[0]
    padded = data[:end] + b"\x00\x11\x22" + data[end:]
    assert pillow_decodes(padded)
    check_jpeg(padded)


def test_fill_bytes_before_a_marker_are_accepted() -> None:
    data = PHOTO.read_bytes()
    filled = data[:-2] + b"\xff\xff\xff" + EOI
    assert pillow_decodes(filled)
    check_jpeg(filled)


def test_missing_standard_huffman_tables_are_supplied_as_libjpeg_does() -> None:
    # Pillow writes the standard tables unless asked to optimise: drop them (Motion-JPEG).
    data = encode(small_photo())
    stripped = b"".join(
        data[start:end] if code != DHT else b""
        for start, code, end in [(0, 0xD8, 2), *header_segments(data)]
    )
    stripped += data[scan_data_start(data) :]
    assert DHT not in [code for _, code, _ in header_segments(stripped)]
    assert pillow_decodes(stripped)
    check_jpeg(stripped)


# -- damaged files ----------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"progressive": True}], ids=["baseline", "progressive"])
@pytest.mark.parametrize("cut", [3, 20, 150, 0.3, 0.5, 0.9, -3, -2, -1])
def test_truncated_jpegs_are_damaged(options: dict[str, object], cut: float) -> None:
    data = encode(small_photo(), **options)
    keep = int(len(data) * cut) if isinstance(cut, float) else cut
    damaged = data[:keep]
    assert not pillow_decodes(damaged)
    assert refused(damaged)


def test_cut_right_after_the_scan_header_is_damaged() -> None:
    data = PHOTO.read_bytes()
    assert "truncated" in refused(data[: scan_data_start(data)])


def test_truncated_corpus_cmyk_is_damaged() -> None:
    data = CMYK.read_bytes()
    assert "truncated" in refused(data[: len(data) * 2 // 3])


@pytest.mark.parametrize(
    "code",
    [0x05, 0xC0, 0xC8, 0xD8, 0xDB, 0xF0],
    ids=["reserved", "second-SOF", "JPG", "SOI", "DQT", "JPG0"],
)
def test_corrupt_marker_inside_the_scan_is_damaged(code: int) -> None:
    data = PHOTO.read_bytes()
    middle = (scan_data_start(data) + len(data)) // 2
    damaged = data[:middle] + bytes([0xFF, code]) + data[middle + 2 :]
    assert not pillow_decodes(damaged)
    assert refused(damaged)


def test_reserved_code_in_a_scan_with_restarts_is_damaged_though_pillow_skips_it() -> None:
    # libjpeg resynchronises at the next restart marker and leaves a grey stripe.
    data = encode(small_photo(), restart_marker_blocks=2)
    middle = (scan_data_start(data) + len(data)) // 2
    damaged = data[:middle] + b"\xff\x05" + data[middle + 2 :]
    assert pillow_decodes(damaged)
    assert "unknown marker FF05" in refused(damaged)


def test_no_start_of_image_is_damaged() -> None:
    assert "start-of-image" in refused(b"\xff\xd9" + PHOTO.read_bytes()[2:])
    assert refused(b"")


def test_no_image_data_is_damaged() -> None:
    assert "before any image data" in refused(b"\xff\xd8\xff\xd9")


def test_undefined_quantisation_table_is_damaged() -> None:
    data = PHOTO.read_bytes()
    frame = next(start for start, code, _ in header_segments(data) if code == 0xC0)
    table = frame + 4 + 6 + 2  # the first component's quantisation table number
    damaged = data[:table] + b"\x03" + data[table + 1 :]
    assert not pillow_decodes(damaged)
    assert "quantisation table 3" in refused(damaged)


def test_undefined_huffman_table_in_a_progressive_scan_is_damaged() -> None:
    # libjpeg supplies standard tables to sequential images only.
    data = encode(small_photo(), progressive=True)
    dht_start, _, dht_end = next(s for s in header_segments(data) if s[1] == DHT)
    damaged = data[:dht_start] + data[dht_end:]
    assert not pillow_decodes(damaged)
    assert "Huffman table" in refused(damaged)


def test_second_scan_after_a_complete_sequential_scan_is_damaged() -> None:
    # A progressive file relabelled baseline: libjpeg expects EOI after the first scan.
    data = encode(small_photo(), progressive=True)
    frame = next(start for start, code, _ in header_segments(data) if code == 0xC2)
    damaged = data[: frame + 1] + b"\xc0" + data[frame + 2 :]
    assert not pillow_decodes(damaged)
    assert "second scan" in refused(damaged)


def test_hierarchical_process_is_refused() -> None:
    data = PHOTO.read_bytes()
    frame = next(start for start, code, _ in header_segments(data) if code == 0xC0)
    assert "not support" in refused(data[: frame + 1] + b"\xc5" + data[frame + 2 :])


def test_segment_running_past_the_end_is_damaged() -> None:
    data = encode(small_photo())
    assert len(data) < 0xFFF0
    start, _, _ = header_segments(data)[0]
    damaged = data[: start + 2] + b"\xff\xf0" + data[start + 4 :]
    assert not pillow_decodes(damaged)
    assert "truncated" in refused(damaged)


# -- the same verdict as Pillow's decoder ---------------------------------------------------


def mutations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    """Cuts, overwritten bytes and inserted marker codes anywhere in the file."""
    out = []
    for _ in range(count):
        at = rng.randrange(2, len(data) - 2)
        kind = rng.randrange(3)
        if kind == 0:
            out.append(data[:at])
        elif kind == 1:
            out.append(data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :])
        else:
            out.append(data[:at] + bytes([0xFF, rng.randrange(256)]) + data[at + 2 :])
    return out


@pytest.mark.parametrize(
    "options",
    [{"optimize": True}, {"progressive": True, "restart_marker_rows": 2}],
    ids=["baseline", "progressive"],
)
def test_whatever_pillow_cannot_decode_is_refused(options: dict[str, object]) -> None:
    """The check may refuse more (a corrupt segment Pillow happens not to read), never less:
    a damaged file Pillow could not decode must not reach the PDF."""
    data = encode(small_photo().resize((48, 40)), **options)
    for damaged in mutations(data, random.Random(5), 300):
        if pillow_decodes(damaged):
            continue
        try:
            Image.open(io.BytesIO(damaged), formats=["JPEG"]).close()
        except (UnidentifiedImageError, SyntaxError, OSError):
            continue  # Pillow cannot even open it: img2pdf refuses it too
        with pytest.raises(JpegDamage):
            check_jpeg(damaged)
