"""Re-encoding one PDF image XObject smaller: JPEG, CCITT G4 or Flate, downsampled or not.

`recompress_image` decides what a smaller encoding of an image would be and returns it
without touching the document; `replace_image` puts it in, `StreamSnapshot` puts the
original back. Images this module cannot reproduce faithfully (unusual colour spaces,
colour-key masks, 16-bit samples, JBIG2...) are left alone: it returns None for them.
"""

from __future__ import annotations

import enum
import io
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pikepdf
from pikepdf import Name
from PIL import Image, ImageChops

# Filters whose data we can decode (through pikepdf and Pillow) and then re-encode.
_DECODABLE = {
    Name.FlateDecode, Name.LZWDecode, Name.RunLengthDecode, Name.ASCII85Decode,
    Name.ASCIIHexDecode, Name.DCTDecode, Name.JPXDecode,
}
# Already bilevel-specific and compact: nothing we can encode does better.
_BILEVEL_CODECS = {Name.CCITTFaxDecode, Name.JBIG2Decode}
_LOSSY_CODECS = {Name.DCTDecode, Name.JPXDecode}
_COMPONENTS = {Name.DeviceGray: 1, Name.CalGray: 1, Name.DeviceRGB: 3, Name.CalRGB: 3,
               Name.DeviceCMYK: 4}
_MODE_FOR_COMPONENTS = {1: "L", 3: "RGB", 4: "CMYK"}

# Images are downsampled only when their resolution exceeds the target by this factor,
# so that an image a little above the target is not resampled for a small gain
# (the same idea as Ghostscript's and PDF Tools' downsampling thresholds).
DOWNSAMPLE_THRESHOLD = 1.4
# A lossy re-encoding at the same resolution (a JPEG made from a JPEG, say) adds a
# generation of loss; it must buy at least this fraction of the image's bytes.
_MIN_LOSSY_GAIN = 0.15
# Decoding a bigger image would take gigabytes; such images are left as they are.
_MAX_PIXELS = 100_000_000
# A big image stored in under this many bytes per pixel is mostly flat colour (a poster
# background, say): re-encoding could save at most its few bytes, while decoding it
# costs seconds. Such images are left as they are.
_BIG_IMAGE_PIXELS = 16_000_000
_MIN_BYTES_PER_BIG_PIXEL = 0.01
# Palettes this small are drawings or charts: JPEG would only smear their edges.
_MIN_PALETTE_FOR_JPEG = 16


class ImageFormat(enum.Enum):
    """`ImageOptimizationFormat` of the `profiles` parameter."""

    JPEG = "JPEG"  # colour and gray images become JPEG; bilevel ones CCITT G4
    FAX = "Fax"  # every image becomes black-and-white CCITT G4 (as a fax)
    FLATE = "Flate"  # lossless Flate; only downsampling and gray conversion lose detail


@dataclass(frozen=True)
class RecompressOptions:
    image_format: ImageFormat = ImageFormat.JPEG
    jpeg_quality: int = 75
    resample: bool = True
    resolution: float = 150.0  # target pixels per inch when downsampling
    grayscale: bool = False


@dataclass
class Encoded:
    """A new encoding of an image, ready to be written into its stream."""

    data: bytes
    filter: pikepdf.Name
    decode_parms: pikepdf.Dictionary | None
    width: int
    height: int
    bits: int
    colorspace: pikepdf.Object | None  # None: keep the stream's own (image masks)
    decode: list[float] | None  # None: no /Decode (the default mapping)
    lossy: bool
    # Resolution or colour model changed on purpose (not merely a smaller encoding).
    reshaped: bool = False


@dataclass
class StreamSnapshot:
    """A stream's encoded data and dictionary, to undo a replacement exactly."""

    raw: bytes
    items: dict[str, pikepdf.Object]

    @classmethod
    def of(cls, stream: pikepdf.Stream) -> StreamSnapshot:
        items = {key: stream[key] for key in stream.stream_dict if key != "/Length"}
        return cls(raw=stream.read_raw_bytes(), items=items)

    def restore(self, stream: pikepdf.Stream) -> None:
        stream.write(
            self.raw,
            filter=self.items.get("/Filter"),
            decode_parms=self.items.get("/DecodeParms"),
            type_check=False,
        )
        for key in list(stream.keys()):
            if key != "/Length" and key not in self.items:
                del stream[key]
        for key, value in self.items.items():
            stream[key] = value


@dataclass
class _Source:
    """What we need to know about an image before decoding it."""

    width: int
    height: int
    bits: int
    filters: list[pikepdf.Name]
    colorspace: pikepdf.Object | None
    components: int  # of the colour space the decoded pixels are in (after a palette)
    indexed_base: pikepdf.Object | None  # base colour space if /Indexed
    decode: list[float] | None
    image_mask: bool
    matte: bool  # soft mask with /Matte: pixels pre-multiplied, size must not change
    raw_size: int

    @property
    def default_decode(self) -> bool:
        if self.decode is None:
            return True
        if self.indexed_base is not None:
            return self.decode == [0.0, float((1 << self.bits) - 1)]
        return self.decode == [0.0, 1.0] * (len(self.decode) // 2)


def recompress_image(
    image: pikepdf.Stream, dpi: float, options: RecompressOptions
) -> Encoded | None:
    """A smaller encoding of `image` drawn at `dpi`, or None to keep it as it is."""
    try:
        source = _describe(image)
        if source is None:
            return None
        if source.bits == 1 and source.indexed_base is None:
            return _bilevel_to_g4(image, source)
        encoded = _recompress_continuous(image, source, dpi, options)
    except Exception:  # noqa: BLE001
        # Pillow, the codecs and pikepdf raise many kinds of errors on odd images; one
        # undecodable image must never fail the document: it is simply kept as it was.
        return None
    if encoded is None:
        return None
    # A lossy re-encoding at the same size and colour model must earn its extra loss.
    limit = source.raw_size
    if encoded.lossy and not encoded.reshaped:
        limit *= 1 - _MIN_LOSSY_GAIN
    return encoded if len(encoded.data) < limit else None


def replace_image(image: pikepdf.Stream, encoded: Encoded) -> None:
    """Write a new encoding into an image stream, keeping its other keys (masks, OC...)."""
    for key in ("/DecodeParms", "/Decode", "/Filter"):
        if key in image:
            del image[key]
    image.write(encoded.data, filter=encoded.filter, decode_parms=encoded.decode_parms)
    image.Width = encoded.width
    image.Height = encoded.height
    if encoded.colorspace is not None:
        image.ColorSpace = encoded.colorspace
        image.BitsPerComponent = encoded.bits
    if encoded.decode is not None:
        image.Decode = pikepdf.Array(encoded.decode)


# -- describing ------------------------------------------------------------------------


def _as_list(value: pikepdf.Object | None) -> list[pikepdf.Object]:
    if value is None:
        return []
    if isinstance(value, pikepdf.Array):
        return list(value)
    return [value]


def _describe(image: pikepdf.Stream) -> _Source | None:
    try:
        width, height = int(image.Width), int(image.Height)
        image_mask = bool(image.get(Name.ImageMask, False))
        bits = 1 if image_mask else int(image.get(Name.BitsPerComponent, 0))
        decode = [float(v) for v in _as_list(image.get(Name.Decode))] or None
    except (AttributeError, TypeError, ValueError):
        return None
    filters = _as_list(image.get(Name.Filter))
    if width <= 0 or height <= 0 or width * height > _MAX_PIXELS:
        return None
    raw_size = len(image.read_raw_bytes())
    if width * height > _BIG_IMAGE_PIXELS and raw_size < width * height * _MIN_BYTES_PER_BIG_PIXEL:
        return None
    if any(f not in _DECODABLE and f not in _BILEVEL_CODECS for f in filters):
        return None  # Crypt filters and unknown names
    if any(f in _BILEVEL_CODECS for f in filters):
        return None
    if isinstance(image.get(Name.Mask), pikepdf.Array):
        return None  # colour-key masks name exact sample values that lossy codecs move
    if Name.SMaskInData in image and int(image.get(Name.SMaskInData, 0)) != 0:
        return None
    smask = image.get(Name.SMask)
    matte = isinstance(smask, pikepdf.Stream) and Name.Matte in smask
    colorspace = None if image_mask else image.get(Name.ColorSpace)
    if image_mask:
        components, base = 1, None
    else:
        resolved = _colour_components(colorspace, filters)
        if resolved is None:
            return None
        components, base = resolved
    if bits not in (1, 8) and base is None:
        return None
    return _Source(
        width=width, height=height, bits=bits, filters=filters, colorspace=colorspace,
        components=components, indexed_base=base, decode=decode, image_mask=image_mask,
        matte=matte, raw_size=raw_size,
    )


def _colour_components(
    colorspace: pikepdf.Object | None, filters: list[pikepdf.Name]
) -> tuple[int, pikepdf.Object | None] | None:
    """(components, indexed base) of a colour space we can reproduce, else None."""
    if colorspace is None:
        # Only JPEG 2000 may leave the colour space to its own header.
        return (0, None) if Name.JPXDecode in filters else None
    direct = _direct_components(colorspace)
    if direct is not None:
        return direct, None
    if (
        isinstance(colorspace, pikepdf.Array)
        and len(colorspace) == 4
        and colorspace[0] == Name.Indexed
    ):
        base = colorspace[1]
        base_components = _direct_components(base)
        if base_components is None or int(colorspace[2]) + 1 < _MIN_PALETTE_FOR_JPEG:
            return None
        return base_components, base
    return None


def _direct_components(colorspace: pikepdf.Object) -> int | None:
    if isinstance(colorspace, pikepdf.Name):
        return _COMPONENTS.get(colorspace)
    if isinstance(colorspace, pikepdf.Array) and len(colorspace) == 2:
        family, parameters = colorspace[0], colorspace[1]
        if family == Name.ICCBased and isinstance(parameters, pikepdf.Stream):
            components = int(parameters.get(Name.N, 0))
            return components if components in (1, 3, 4) else None
        if family in (Name.CalRGB, Name.CalGray):
            return _COMPONENTS[family]
    return None


# -- bilevel ---------------------------------------------------------------------------


def _bilevel_to_g4(image: pikepdf.Stream, source: _Source) -> Encoded | None:
    """Flate (or other generic) bilevel data → CCITT G4: lossless and several times smaller."""
    samples = image.read_bytes()
    row_bytes = (source.width + 7) // 8
    if len(samples) < row_bytes * source.height:
        return None
    bits = Image.frombytes("1", (source.width, source.height), samples[: row_bytes * source.height])
    data = _encode_g4(bits)
    if len(data) >= source.raw_size:
        return None
    return Encoded(
        data=data, filter=Name.CCITTFaxDecode,
        decode_parms=_g4_parms(source.width, source.height),
        width=source.width, height=source.height, bits=1,
        colorspace=source.colorspace, decode=source.decode, lossy=False,
    )


def _encode_g4(bits: Image.Image) -> bytes:
    """CCITT Group 4 data of a mode '1' image (one TIFF strip, as PDF wants it)."""
    buffer = io.BytesIO()
    bits.save(buffer, "TIFF", compression="group4", tiffinfo={278: bits.height})
    tiff = Image.open(io.BytesIO(buffer.getvalue()))
    offset = tiff.tag_v2[273][0]
    length = tiff.tag_v2[279][0]
    return buffer.getvalue()[offset : offset + length]


def _g4_parms(width: int, height: int) -> pikepdf.Dictionary:
    # Pillow writes G4 with white = 1 (BlackIsZero photometry); /BlackIs1 true makes
    # PDF readers decode exactly the bits Pillow was given.
    return pikepdf.Dictionary(K=-1, Columns=width, Rows=height, BlackIs1=True)


# -- colour and gray -------------------------------------------------------------------


def _recompress_continuous(
    image: pikepdf.Stream, source: _Source, dpi: float, options: RecompressOptions
) -> Encoded | None:
    colour = _output_colour(source)
    if colour is None:
        return None
    colorspace, decode = colour
    size = _target_size(source, dpi, options)
    picture = _open_picture(image, source, size)
    if picture is None:
        return None
    # Pillow inverts Adobe CMYK JPEGs while decoding; this tells whether `picture`
    # holds the stored samples or their inverse.
    inverted = picture.mode == "CMYK" and "adobe" in picture.info
    picture.info.clear()  # no ICC profile or EXIF copied into the new JPEG/PNG data
    if size != (source.width, source.height):
        picture = _downsample(picture, size)
    reshaped = picture.size != (source.width, source.height)
    if options.grayscale and picture.mode != "L":
        shown = _as_displayed(picture, decode, inverted)
        if shown is not None:
            picture, colorspace, decode, inverted = shown.convert("L"), Name.DeviceGray, None, False
            reshaped = True
    if options.image_format is ImageFormat.FAX:
        shown = _as_displayed(picture, decode, inverted)
        return _encode_fax(shown) if shown is not None else None
    # A palette image (few colours, sharp edges: charts, logos) shows JPEG ringing that a
    # low-resolution check can miss; unless it is downsampled anyway, it stays lossless.
    keep_palette_lossless = source.indexed_base is not None and not reshaped
    if options.image_format is ImageFormat.FLATE or keep_palette_lossless:
        decode = _flip(decode, len(picture.getbands())) if inverted else decode
        return _encode_flate(picture, colorspace, decode, lossy=reshaped)
    return _encode_jpeg(picture, colorspace, decode, inverted, options.jpeg_quality, reshaped)


def _output_colour(source: _Source) -> tuple[pikepdf.Object, list[float] | None] | None:
    """Colour space and /Decode of the re-encoded image, or None if we cannot say."""
    if source.indexed_base is not None:
        if not source.default_decode or set(source.filters) & _LOSSY_CODECS:
            return None  # a /Decode on indices remaps the palette itself
        return source.indexed_base, None
    if source.colorspace is not None:
        return source.colorspace, source.decode
    # JPEG 2000 carrying its own colour space: only plain gray and RGB are taken.
    if source.decode is not None:
        return None
    return Name.DeviceRGB, None  # checked against the decoded bands in _open_picture


def _open_picture(
    image: pikepdf.Stream, source: _Source, size: tuple[int, int]
) -> Image.Image | None:
    """The image's pixels in its (direct) colour space, as Pillow decodes them."""
    codec = source.filters[-1] if source.filters else None
    if codec in (Name.DCTDecode, Name.JPXDecode):
        # Peel Flate/ASCII wrappers only; Pillow decodes the JPEG itself, lazily, which
        # lets it decode at a reduced scale when we are about to downsample.
        picture = Image.open(io.BytesIO(_codestream(image, source.filters)))
        if size != picture.size:
            _decode_smaller(picture, size)
        expected = _MODE_FOR_COMPONENTS.get(source.components)
        if source.components == 0:  # JPEG 2000 with its own colour space
            expected = "RGB" if picture.mode == "RGB" else None
        return picture if picture.mode == expected else None
    samples = _samples(image, source)
    if samples is None:
        return None
    if source.indexed_base is not None:
        return _expand_palette(image, source, samples)
    mode = _MODE_FOR_COMPONENTS[source.components]
    if len(samples) < source.width * source.height * source.components:
        return None
    return Image.frombuffer(mode, (source.width, source.height), samples, "raw", mode, 0, 1)


def _samples(image: pikepdf.Stream, source: _Source) -> bytes | None:
    """The decoded sample bytes, never more than the image's size calls for."""
    expected = source.height * ((source.width * source.bits * source.components + 7) // 8)
    if source.indexed_base is not None:
        expected = source.height * ((source.width * source.bits + 7) // 8)
    if source.filters == [Name.FlateDecode] and Name.DecodeParms not in image:
        # Python's zlib is about twice as fast as qpdf's pipeline on big images, and the
        # output cap stops a small stream from inflating into gigabytes.
        try:
            return zlib.decompressobj().decompress(image.read_raw_bytes(), expected)
        except zlib.error:
            pass  # let qpdf try: it tolerates some damaged Flate data
    return image.read_bytes()


def _codestream(image: pikepdf.Stream, filters: list[pikepdf.Object]) -> bytes:
    """The JPEG / JPEG 2000 data of an image, with wrappers such as Flate or ASCII85 undone."""
    raw = image.read_raw_bytes()
    if len(filters) == 1:
        return raw
    # qpdf will not decode a stream only part of the way, so the outer filters are run
    # on a copy in a scratch document.
    with pikepdf.new() as scratch:
        wrapped = pikepdf.Stream(scratch, raw)
        wrapped.Filter = pikepdf.Array(filters[:-1])
        parms = image.get(Name.DecodeParms)
        if isinstance(parms, pikepdf.Array):
            wrapped.DecodeParms = pikepdf.Array(
                [scratch.copy_foreign(p) if p.is_indirect else p for p in list(parms)[:-1]]
            )
        return wrapped.read_bytes()


def _expand_palette(
    image: pikepdf.Stream, source: _Source, samples: bytes
) -> Image.Image | None:
    """Indexed samples → the base colour space's samples, through the lookup table."""
    colorspace = image.ColorSpace
    lookup = colorspace[3]
    table_bytes = lookup.read_bytes() if isinstance(lookup, pikepdf.Stream) else bytes(lookup)
    components = source.components
    entries = int(colorspace[2]) + 1
    table = np.frombuffer(table_bytes, dtype=np.uint8)
    if len(table) < entries * components:
        return None
    table = table[: entries * components].reshape(entries, components)
    # Out-of-range indices are clamped to the last entry, as readers do.
    table = np.concatenate([table, np.repeat(table[-1:], 256 - entries, axis=0)])
    indices = _unpack_indices(samples, source.width, source.height, source.bits)
    if indices is None:
        return None
    pixels = np.ascontiguousarray(table[indices])
    mode = _MODE_FOR_COMPONENTS[components]
    size = (source.width, source.height)
    return Image.frombuffer(mode, size, pixels.tobytes(), "raw", mode, 0, 1)


def _unpack_indices(samples: bytes, width: int, height: int, bits: int) -> np.ndarray | None:
    row_bytes = (width * bits + 7) // 8
    if bits not in (1, 2, 4, 8) or len(samples) < row_bytes * height:
        return None
    rows = np.frombuffer(samples, dtype=np.uint8, count=row_bytes * height)
    rows = rows.reshape(height, row_bytes)
    if bits == 8:
        return rows[:, :width]
    per_byte = 8 // bits
    shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)
    unpacked = (rows[:, :, None] >> shifts) & ((1 << bits) - 1)
    return unpacked.reshape(height, row_bytes * per_byte)[:, :width]


def _downsample(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Area-average by whole factors (fast), then bicubic for what remains."""
    picture.load()  # a JPEG 2000 decoded at a reduced level learns its real size here
    if picture.size == size:
        return picture
    factor = min(picture.width // size[0], picture.height // size[1])
    if factor >= 2:
        # Called through the class: Pillow's JPEG 2000 images shadow `reduce` with
        # their decode-level setting.
        picture = Image.Image.reduce(picture, factor)
    if picture.size != size:
        picture = picture.resize(size, Image.Resampling.BICUBIC)
    return picture


def _decode_smaller(picture: Image.Image, size: tuple[int, int]) -> None:
    """Let the codec skip detail we are about to throw away (much faster for big images)."""
    if picture.format == "JPEG":
        picture.draft(picture.mode, size)  # decodes at 1/2, 1/4 or 1/8 scale
    elif picture.format == "JPEG2000":
        factor = min(picture.width / size[0], picture.height / size[1])
        picture.reduce = max(0, int(math.log2(factor)))  # type: ignore[method-assign]


def _target_size(source: _Source, dpi: float, options: RecompressOptions) -> tuple[int, int]:
    if (
        not options.resample
        or source.matte
        or not math.isfinite(dpi)
        or dpi <= options.resolution * DOWNSAMPLE_THRESHOLD
    ):
        return source.width, source.height
    factor = options.resolution / dpi
    return max(1, round(source.width * factor)), max(1, round(source.height * factor))


def _as_displayed(
    picture: Image.Image, decode: list[float] | None, inverted: bool
) -> Image.Image | None:
    """The pixels as a reader shows them, needed before changing the colour model; None
    for a /Decode that does more than invert (rare, and not worth reproducing)."""
    components = len(picture.getbands())
    if decode is None or decode == [0.0, 1.0] * components:
        flip = inverted
    elif decode == [1.0, 0.0] * components:
        flip = not inverted
    else:
        return None
    return ImageChops.invert(picture) if flip else picture


def _flip(decode: list[float] | None, components: int) -> list[float] | None:
    """The /Decode that shows the same colours once the stored samples are inverted."""
    full = decode if decode is not None else [0.0, 1.0] * components
    pairs = zip(full[::2], full[1::2], strict=True)
    flipped = [value for low, high in pairs for value in (high, low)]
    return None if flipped == [0.0, 1.0] * components else flipped


def _encode_jpeg(
    picture: Image.Image,
    colorspace: pikepdf.Object | None,
    decode: list[float] | None,
    inverted: bool,
    quality: int,
    reshaped: bool,
) -> Encoded:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality, optimize=True)
    if picture.mode == "CMYK" and not inverted:
        # Pillow stores CMYK JPEGs inverted (Adobe style) and PDF readers do not undo
        # that on their own: the /Decode array must say so.
        decode = _flip(decode, 4)
    return Encoded(
        data=buffer.getvalue(), filter=Name.DCTDecode, decode_parms=None,
        width=picture.width, height=picture.height, bits=8, colorspace=colorspace,
        decode=decode, lossy=True, reshaped=reshaped,
    )


def _encode_flate(
    picture: Image.Image,
    colorspace: pikepdf.Object | None,
    decode: list[float] | None,
    lossy: bool,
) -> Encoded:
    width, height = picture.size
    # PNG row predictors win on drawings and gradients, plain Flate on noisy photos.
    data, parms = zlib.compress(picture.tobytes(), 9), None
    if picture.mode in ("L", "RGB"):
        predicted, predicted_parms = _png_predicted(picture)
        if len(predicted) < len(data):
            data, parms = predicted, predicted_parms
    return Encoded(
        data=data, filter=Name.FlateDecode, decode_parms=parms, width=width, height=height,
        bits=8, colorspace=colorspace, decode=decode, lossy=lossy, reshaped=lossy,
    )


def _png_predicted(picture: Image.Image) -> tuple[bytes, pikepdf.Dictionary]:
    """Flate data with PNG row predictors (what PDF's /Predictor 15 reads), via Pillow's PNG."""
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=6)
    png = buffer.getvalue()
    chunks = []
    position = 8  # after the PNG signature
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        if kind == b"IDAT":
            chunks.append(png[position + 8 : position + 8 + length])
        position += 12 + length
    parms = pikepdf.Dictionary(
        Predictor=15, Colors=len(picture.getbands()), BitsPerComponent=8, Columns=picture.width
    )
    return b"".join(chunks), parms


def _encode_fax(picture: Image.Image) -> Encoded:
    gray = np.asarray(picture.convert("L"))
    bits = Image.fromarray(gray > _otsu_threshold(gray))  # mode '1': True = white
    return Encoded(
        data=_encode_g4(bits), filter=Name.CCITTFaxDecode,
        decode_parms=_g4_parms(bits.width, bits.height), width=bits.width,
        height=bits.height, bits=1, colorspace=Name.DeviceGray, decode=None, lossy=True,
        reshaped=True,
    )


def _otsu_threshold(gray: np.ndarray) -> int:
    """The gray level that best splits ink from paper (Otsu's method)."""
    histogram = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256, dtype=np.float64)
    weight_dark = np.cumsum(histogram)
    weight_light = weight_dark[-1] - weight_dark
    sum_dark = np.cumsum(histogram * levels)
    mean_dark = np.divide(sum_dark, weight_dark, out=np.zeros(256), where=weight_dark > 0)
    mean_light = np.divide(
        sum_dark[-1] - sum_dark, weight_light, out=np.zeros(256), where=weight_light > 0
    )
    between = weight_dark * weight_light * (mean_dark - mean_light) ** 2
    return int(np.argmax(between))
