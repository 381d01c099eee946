"""A JPEG file's structure checked without decoding it: damage shows now, not in a viewer.

JPEG passes into the PDF unchanged, so nothing decodes it on the way, and decoding it only
to look for damage costs more than the whole conversion. This walk reads what a decoder
(libjpeg-turbo: Pillow's, and most viewers') needs to get through the file, and refuses
what would make it stop with an error:

- SOI first; every marker segment whole (a cut file ends inside a segment or a scan);
- one frame header (SOF) of a process libjpeg-turbo decodes, with a width, a height,
  1-4 components and sampling factors it can upsample;
- tables well formed (DQT, DHT, DAC, DRI); every scan (SOS) codes the frame's components
  with the tables it uses already defined (libjpeg-turbo supplies Huffman tables 0 and 1
  to a sequential image that lacks them, as Motion-JPEG frames do), and with the scan
  parameters libjpeg accepts for its process; no second scan after one that coded every
  component of a sequential image;
- the compressed data of each scan runs to a marker: only byte stuffing (FF 00), fill
  bytes (FF FF) and restart markers (RST0-7) occur inside it;
- after the last scan, EOI. Bytes after EOI are ignored, as decoders and browsers do
  (a multi-picture file's other pictures are such bytes).

Like libjpeg, stray bytes between segments are skipped. A bit flipped inside compressed
data shows no structure to check; libjpeg decodes such a file too, with a blemish. Some
damage Pillow decodes around is refused here: a reserved marker code (FF 05) inside a
scan that has restart markers, a segment length field below 2, or a segment running past
the end of the file from inside a scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
DHT, DAC, DQT, DRI = 0xC4, 0xCC, 0xDB, 0xDD
APP1, APP2 = 0xE1, 0xE2
EXIF_SIGNATURE = b"Exif\x00\x00"
XMP_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"
MPF_SIGNATURE = b"MPF\x00"
# Frame headers libjpeg-turbo decodes: sequential, progressive, lossless; Huffman or
# arithmetic coding. The hierarchical (differential) ones, and JPG, it refuses.
SEQUENTIAL, PROGRESSIVE, LOSSLESS = "sequential", "progressive", "lossless"
DECODABLE_FRAMES = {
    0xC0: SEQUENTIAL,
    0xC1: SEQUENTIAL,
    0xC2: PROGRESSIVE,
    0xC3: LOSSLESS,
    0xC9: SEQUENTIAL,
    0xCA: PROGRESSIVE,
    0xCB: LOSSLESS,
}
ARITHMETIC_FRAMES = frozenset({0xC9, 0xCA, 0xCB})
UNDECODABLE_FRAMES = frozenset({0xC5, 0xC6, 0xC7, 0xC8, 0xCD, 0xCE, 0xCF})
# Segments read past by their length: DNL, APP0-15, COM.
SKIPPED = frozenset({0xDC, *range(0xE0, 0xF0), 0xFE})
# Markers without a segment: TEM, RST0-7.
STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# FF and then a byte that is not stuffing (00), fill (FF) or RST0-7: where compressed
# data ends.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xff\xd0-\xd7]")
MAX_COMPONENTS = 4  # in a frame (what PDF holds) and in a scan
MAX_TABLE = 3
MAX_BLOCKS_IN_MCU = 10
STANDARD_HUFFMAN_TABLES = (0, 1)
DC, AC = 0, 1  # Huffman table classes
TRUNCATED = "the file ends before its end-of-image marker: it is truncated"


class JpegDamage(ValueError):
    """The JPEG file is damaged: a decoder would stop at it. The message says where."""


@dataclass(frozen=True)
class JpegLayout:
    """What a sound JPEG file's headers say that embedding it as it is needs to know."""

    width: int
    height: int
    precision: int  # bits per sample
    components: int
    exif: tuple[bytes, ...]  # the APP1 "Exif" segments' contents, signature included
    xmp: bool  # it has an APP1 XMP packet
    multi_picture: bool  # it has an APP2 "MPF" segment: more pictures follow this one


class _Component(NamedTuple):
    horizontal: int  # sampling factors
    vertical: int
    quantisation: int  # table number


class _HuffmanTable(NamedTuple):
    valid: bool  # its code counts make a Huffman code
    largest_symbol: int


@dataclass
class _Walk:
    """What one pass over a file's segments has seen so far."""

    data: bytes
    width: int = 0
    height: int = 0
    components: dict[int, _Component] | None = None  # by id, from the frame header
    process: str = SEQUENTIAL
    arithmetic: bool = False
    precision: int = 8  # bits per sample
    quantisation: set[int] = field(default_factory=set)
    huffman: dict[tuple[int, int], _HuffmanTable] = field(default_factory=dict)
    scans: int = 0
    complete_after_one_scan: bool = False  # a one-scan image: no second scan may follow
    exif: list[bytes] = field(default_factory=list)
    xmp: bool = False
    multi_picture: bool = False

    def marker_after(self, position: int) -> int:
        """Offset of the first marker at or after `position`, past data, stuffing, RSTn."""
        return _next_marker_offset(self.data, position)


def check_jpeg(data: bytes) -> JpegLayout:
    """Its layout if a decoder can read through `data` to its EOI marker, else `JpegDamage`."""
    if data[:2] != b"\xff\xd8":
        raise JpegDamage("it does not start with a JPEG start-of-image marker")
    walk = _Walk(data)
    position = 2
    while True:
        position = _next_marker(walk, position)
        code = data[position + 1]
        if code == EOI:
            return _layout(walk)
        if code in STANDALONE:
            position += 2
            continue
        _check_known(code)
        end = _segment_end(data, position, code)
        if code in (APP1, APP2):
            _note_application_segment(walk, code, position + 4, end)
        elif code not in SKIPPED:
            _read_segment(walk, code, data[position + 4 : end])
        position = walk.marker_after(end) if code == SOS else end


def _layout(walk: _Walk) -> JpegLayout:
    """What the walk found, once it reached EOI."""
    if not walk.scans or walk.components is None:
        raise JpegDamage("it ends before any image data")
    return JpegLayout(
        width=walk.width,
        height=walk.height,
        precision=walk.precision,
        components=len(walk.components),
        exif=tuple(walk.exif),
        xmp=walk.xmp,
        multi_picture=walk.multi_picture,
    )


def _note_application_segment(walk: _Walk, code: int, start: int, end: int) -> None:
    """Keep EXIF, and note XMP and MPF: what orients the page and what ends the picture."""
    data = walk.data
    if code == APP1 and data.startswith(EXIF_SIGNATURE, start, end):
        walk.exif.append(data[start:end])
    elif code == APP1 and data.startswith(XMP_SIGNATURE, start, end):
        walk.xmp = True
    elif code == APP2 and data.startswith(MPF_SIGNATURE, start, end):
        walk.multi_picture = True


def _next_marker_offset(data: bytes, position: int) -> int:
    """Offset of the first FF at or after `position` that begins a marker: not stuffing
    (FF 00), not a fill byte (FF FF), not a restart marker (RST0-7, part of compressed data).

    Compressed data is most of the file and one byte in 256 of it is FF, nearly all
    stuffed: a Python loop over them costs more than the rest of the conversion, a regular
    expression skips them at C speed without copying the data.
    """
    found = _MARKER_IN_SCAN.search(data, position)
    if found is None:
        raise JpegDamage(TRUNCATED)
    return found.start()


def _next_marker(walk: _Walk, position: int) -> int:
    """The marker at `position`, or (as libjpeg does) the next one past stray bytes."""
    data = walk.data
    if position + 1 >= len(data):
        raise JpegDamage(TRUNCATED)
    if data[position] == 0xFF and data[position + 1] not in (0x00, 0xFF):
        return position
    return walk.marker_after(position)


def _check_known(code: int) -> None:
    """Refuse the markers libjpeg stops at, whatever their segment holds."""
    if code in UNDECODABLE_FRAMES:
        raise JpegDamage(f"it uses a JPEG process decoders do not support (SOF FF{code:02X})")
    if code == SOI:
        raise JpegDamage("it has a second start-of-image marker inside it")
    known = code in DECODABLE_FRAMES or code in SKIPPED or code in (SOS, DHT, DAC, DQT, DRI)
    if not known:
        raise JpegDamage(f"it holds an unknown marker FF{code:02X}")


def _segment_end(data: bytes, position: int, code: int) -> int:
    """Where the segment of the marker at `position` ends, checked to fit in the file."""
    if position + 4 > len(data):
        raise JpegDamage(f"the file ends inside a segment (marker FF{code:02X}): truncated")
    length = int.from_bytes(data[position + 2 : position + 4], "big")
    if length < 2:
        raise JpegDamage(f"a segment (marker FF{code:02X}) declares a length of {length}")
    end = position + 2 + length
    if end > len(data):
        raise JpegDamage(f"the file ends inside a segment (marker FF{code:02X}): truncated")
    return end


def _read_segment(walk: _Walk, code: int, body: bytes) -> None:
    """Check one segment's contents and note what later segments depend on."""
    if code == SOS:
        _read_scan(walk, body)
    elif code == DQT:
        _read_quantisation(walk, body)
    elif code == DHT:
        _read_huffman(walk, body)
    elif code == DAC:
        _read_arithmetic_conditioning(body)
    elif code == DRI:
        if len(body) != 2:
            raise JpegDamage("its restart interval segment (DRI) has the wrong length")
    else:  # a frame header: _check_known let no other marker through
        _read_frame(walk, code, body)


def _read_frame(walk: _Walk, code: int, body: bytes) -> None:
    """SOF: the one frame header, its size and components."""
    if walk.components is not None:
        raise JpegDamage("it has a second frame header (SOF)")
    count = body[5] if len(body) > 5 else 0
    if not 1 <= count <= MAX_COMPONENTS or len(body) != 6 + 3 * count:
        raise JpegDamage("its frame header (SOF) is malformed")
    height, width = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big")
    if not width or not height:
        raise JpegDamage(f"its frame header declares a {width}x{height} image")
    components = {}
    for offset in range(6, len(body), 3):
        identifier, sampling, table = body[offset : offset + 3]
        components[identifier] = _Component(sampling >> 4, sampling & 0x0F, table)
    _check_sampling(list(components.values()))
    walk.components = components
    walk.width, walk.height = width, height
    walk.precision = body[0]
    walk.process = DECODABLE_FRAMES[code]
    walk.arithmetic = code in ARITHMETIC_FRAMES


def _check_sampling(components: list[_Component]) -> None:
    """Sampling factors 1-4, each dividing the largest (libjpeg upsamples by whole factors
    only), and quantisation tables 0-3."""
    widest = max(component.horizontal for component in components)
    tallest = max(component.vertical for component in components)
    for component in components:
        factors = (component.horizontal, component.vertical)
        if not all(1 <= factor <= 4 for factor in factors) or component.quantisation > 3:
            raise JpegDamage("its frame header (SOF) declares impossible components")
        if widest % component.horizontal or tallest % component.vertical:
            raise JpegDamage("its frame header (SOF) declares fractional subsampling")


def _read_scan(walk: _Walk, body: bytes) -> None:
    """SOS: which components a scan codes, with tables that must already be there."""
    if walk.components is None:
        raise JpegDamage("image data (SOS) comes before the frame header (SOF)")
    if walk.complete_after_one_scan:
        raise JpegDamage("a second scan follows the one scan of a sequential image")
    count = body[0] if body else 0
    if not 1 <= count <= MAX_COMPONENTS or len(body) != 4 + 2 * count:
        raise JpegDamage("a scan header (SOS) is malformed")
    start, end, approximation = body[-3:]
    blocks = 0
    for offset in range(1, 1 + 2 * count, 2):
        component = walk.components.get(body[offset])
        if component is None:
            raise JpegDamage(f"a scan codes component {body[offset]}, which the frame lacks")
        if component.quantisation not in walk.quantisation and walk.process != LOSSLESS:
            raise JpegDamage(f"quantisation table {component.quantisation} is not defined")
        if not walk.arithmetic:
            _check_scan_huffman(walk, body[offset + 1], start, approximation)
        blocks += component.horizontal * component.vertical
    if count > 1 and blocks > MAX_BLOCKS_IN_MCU:
        raise JpegDamage("a scan header (SOS) makes too large a unit of blocks")
    if walk.process == PROGRESSIVE:
        _check_progression(count, start, end, approximation)
    elif walk.process == LOSSLESS:
        _check_lossless(walk.precision, start, end, approximation)
    # libjpeg decodes a sequential image whose first scan codes every component in one
    # pass, and expects EOI after it.
    walk.complete_after_one_scan = (
        walk.process != PROGRESSIVE and not walk.scans and count == len(walk.components)
    )
    walk.scans += 1


def _check_scan_huffman(walk: _Walk, selectors: int, start: int, approximation: int) -> None:
    """The Huffman tables a component's scan decodes with, as libjpeg-turbo uses them."""
    dc_table, ac_table = selectors >> 4, selectors & 0x0F
    if walk.process != PROGRESSIVE:
        used = [(DC, dc_table)] if walk.process == LOSSLESS else [(DC, dc_table), (AC, ac_table)]
    elif start == 0:
        used = [] if approximation >> 4 else [(DC, dc_table)]  # refining DC needs none
    else:
        used = [(AC, ac_table)]
    largest_dc = 16 if walk.process == LOSSLESS else 15
    for kind, number in used:
        table = walk.huffman.get((kind, number))
        standard = walk.process == SEQUENTIAL and number in STANDARD_HUFFMAN_TABLES
        if table is None and not standard:
            raise JpegDamage(f"Huffman table {number} is not defined")
        if table and (not table.valid or kind == DC and table.largest_symbol > largest_dc):
            raise JpegDamage(f"Huffman table {number} is malformed")


def _check_progression(count: int, start: int, end: int, approximation: int) -> None:
    """A progressive scan's spectral band and bit positions, as libjpeg checks them."""
    high, low = approximation >> 4, approximation & 0x0F
    # A DC scan holds no AC coefficients; an AC scan holds one component's band.
    band_wrong = end != 0 if start == 0 else start > end or end > 63 or count != 1
    if band_wrong or (high and low != high - 1) or low > 13:
        raise JpegDamage("a progressive scan header (SOS) is malformed")


def _check_lossless(precision: int, predictor: int, end: int, approximation: int) -> None:
    """A lossless scan's predictor (1-7) and point transform, as libjpeg-turbo checks them."""
    if not 1 <= predictor <= 7 or end or approximation >> 4 or approximation >= precision:
        raise JpegDamage("a lossless scan header (SOS) is malformed")


def _read_quantisation(walk: _Walk, body: bytes) -> None:
    """DQT: one or more tables of 64 values, of 8 or 16 bits."""
    offset = 0
    while offset < len(body):
        precision, table = body[offset] >> 4, body[offset] & 0x0F
        if precision > 1 or table > MAX_TABLE:
            raise JpegDamage("a quantisation table segment (DQT) is malformed")
        walk.quantisation.add(table)
        offset += 1 + 64 * (precision + 1)
    if offset != len(body):
        raise JpegDamage("a quantisation table segment (DQT) has the wrong length")


def _read_huffman(walk: _Walk, body: bytes) -> None:
    """DHT: one or more tables, each 16 code counts then that many symbols."""
    offset = 0
    while offset < len(body):
        kind, number = body[offset] >> 4, body[offset] & 0x0F
        counts = body[offset + 1 : offset + 17]
        total = sum(counts)
        symbols = body[offset + 17 : offset + 17 + total]
        if kind > AC or number > MAX_TABLE or len(counts) < 16 or not len(symbols) == total <= 256:
            raise JpegDamage("a Huffman table segment (DHT) is malformed")
        walk.huffman[kind, number] = _HuffmanTable(
            _is_huffman_code(counts), max(symbols, default=0)
        )
        offset += 17 + len(symbols)


def _is_huffman_code(counts: bytes) -> bool:
    """True if so many codes of each length 1-16 fit, none of them all ones (libjpeg).

    libjpeg assigns codes in order of length; they fit while the Kraft sum stays below 1.
    """
    return sum(count << (16 - length) for length, count in enumerate(counts, 1)) < 1 << 16


def _read_arithmetic_conditioning(body: bytes) -> None:
    """DAC: pairs of a table number (DC 0-15, AC 16-31) and its conditioning values."""
    if len(body) % 2:
        raise JpegDamage("an arithmetic conditioning segment (DAC) has the wrong length")
    for index, value in zip(body[::2], body[1::2], strict=True):
        if index >= 32 or index < 16 and value & 0x0F > value >> 4:
            raise JpegDamage("an arithmetic conditioning segment (DAC) is malformed")
