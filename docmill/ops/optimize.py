"""`/pdf/optimize`: make a PDF smaller without making it look different.

Two kinds of work. Lossless: merge identical streams, compress what is uncompressed
(XMP packets of images and pages included), pack objects into object streams, drop
embedded page thumbnails and other applications' private data (/PieceInfo), and let qpdf
leave out unreferenced objects. Lossy, steered by `profiles`: re-encode images (JPEG,
CCITT G4 or Flate), downsample those drawn at more than the target resolution, and
optionally turn them gray. Bilevel images become CCITT G4, which is lossless.

A lossy change is kept only where it shows no harm: pages whose images changed are
rendered before and after (PDFium, 72 DPI, grayscale) and compared by SSIM. A page that
scores too low gets its images encoded again at a higher JPEG quality and, if it still
looks different, its original images back. The output is never larger than the input:
if optimizing does not pay, the input is returned unchanged.

What is kept on purpose: an encrypted input keeps its encryption (same passwords and
permissions), since optimizing is not a way to remove protection; a signed document is
returned unchanged, since any rewrite would break its signatures; a PDF/A-1 file is
written without object streams and with plain metadata, as PDF/A-1 requires.
"""

from __future__ import annotations

import hashlib
import shutil
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pikepdf
import pypdfium2 as pdfium
from pikepdf import Name
from pydantic import model_validator

from docmill.errors import DamagedFileError, InvalidParametersError
from docmill.imagecompare import render_gray, ssim
from docmill.imageplacement import ObjGen, find_image_placements
from docmill.imagerecompress import (
    ImageFormat,
    RecompressOptions,
    StreamSnapshot,
    recompress_image,
    replace_image,
)
from docmill.operation import CommonParams, Operation, OpResult, ResultShape, register
from docmill.pdf import open_pikepdf, pdfium_document
from docmill.profiles import profile_value

# Pages are compared at this resolution: enough to see a blanked, blackened, inverted or
# badly blurred image, cheap enough to run on every page whose images changed.
COMPARE_DPI = 72
# A page whose SSIM against the original falls below this gets its original images back.
# A little above the 0.95 we promise, so a comparison at another resolution or with
# another renderer still clears 0.95.
MIN_PAGE_SSIM = 0.97
# JPEG quality of the second try on pages that did not look the same.
_RETRY_QUALITY = 90
# An image drawn on many pages is checked on this many of them.
_PAGES_PER_SHARED_IMAGE = 3
_OUTPUT_NAME = "optimized.pdf"

_FORMATS = {image_format.value.lower(): image_format for image_format in ImageFormat}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class Params(CommonParams):
    """`profiles` keys (case-insensitive): ImageOptimizationFormat (JPEG | Fax | Flate),
    JPEGQuality (1-100), ResampleImages (bool), ResamplingResolution (DPI),
    GrayscaleImages (bool)."""

    @model_validator(mode="after")
    def _check_profiles(self) -> Params:
        recompress_options(self.profiles)  # fail fast with 454, before a job is queued
        return self


def recompress_options(profiles: dict[str, Any]) -> RecompressOptions:
    """Read the image options out of `profiles`; a bad value is error 454."""
    defaults = RecompressOptions()
    return RecompressOptions(
        image_format=_format_option(profile_value(profiles, "ImageOptimizationFormat")),
        jpeg_quality=int(
            _number_option(profiles, "JPEGQuality", defaults.jpeg_quality, 1, 100, whole=True)
        ),
        resample=_bool_option(profiles, "ResampleImages", defaults.resample),
        resolution=_number_option(
            profiles, "ResamplingResolution", defaults.resolution, 10, 10_000, whole=False
        ),
        grayscale=_bool_option(profiles, "GrayscaleImages", defaults.grayscale),
    )


def _format_option(value: Any) -> ImageFormat:
    if value is None or value == "":
        return RecompressOptions().image_format
    image_format = _FORMATS.get(str(value).strip().lower())
    if image_format is None:
        raise InvalidParametersError(
            f"Invalid ImageOptimizationFormat {value!r} in 'profiles': use JPEG, Fax or Flate."
        )
    return image_format


def _number_option(
    profiles: dict[str, Any], name: str, default: float, low: float, high: float, whole: bool
) -> float:
    value = profile_value(profiles, name)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).strip())
    except ValueError:
        number = float("nan")
    if not low <= number <= high or (whole and not number.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise InvalidParametersError(
            f"Invalid {name} {value!r} in 'profiles': use {kind} from {low:g} to {high:g}."
        )
    return number


def _bool_option(profiles: dict[str, Any], name: str, default: bool) -> bool:
    value = profile_value(profiles, name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidParametersError(f"Invalid {name} {value!r} in 'profiles': use true or false.")


@dataclass
class _ImageChange:
    """An image replaced in the document, and how to put it back."""

    snapshot: StreamSnapshot
    pages: dict[int, float]  # page index → the image's resolution there
    dpi: float
    lossy: bool


@dataclass(frozen=True)
class _Candidate:
    """Where and how the optimized document is written before it is accepted."""

    path: Path
    encrypted: bool  # keep the input's encryption (algorithm, passwords, permissions)
    object_streams: bool  # not for PDF/A-1, which is based on PDF 1.4

    def save(self, pdf: pikepdf.Pdf) -> None:
        pdf.save(
            self.path,
            object_stream_mode=(
                pikepdf.ObjectStreamMode.generate
                if self.object_streams
                else pikepdf.ObjectStreamMode.disable
            ),
            compress_streams=True,
            encryption=self.encrypted,
        )


@dataclass
class _LookCheck:
    """The original and the candidate, to compare how their pages look."""

    original: Path
    password: str
    candidate: _Candidate
    # Renderings of original pages, kept for a second comparison after a retry.
    renderings: dict[int, np.ndarray] = field(default_factory=dict)


def optimize_pdf(inputs: list[Path], params: Params, out_dir: Path) -> OpResult:
    source = inputs[0]
    options = recompress_options(params.profiles)
    output = out_dir / _OUTPUT_NAME
    with open_pikepdf(source, params.password) as pdf:
        page_count = len(pdf.pages)
        if _is_signed(pdf):
            # Any rewrite breaks the signatures' byte ranges: a signed document is
            # returned as it is rather than silently unsigned.
            shutil.copyfile(source, output)
            return OpResult(files=[output], page_count=page_count)
        pdfa = _pdfa_status(pdf)
        candidate = _Candidate(
            out_dir / "candidate.pdf",
            encrypted=pdf.is_encrypted,
            object_streams=not pdfa.startswith("1"),
        )
        try:
            _tidy_structure(pdf, compress_metadata=not pdfa)
            changes = _recompress_images(pdf, options)
            candidate.save(pdf)
            check = _LookCheck(source, params.password, candidate)
            _undo_visible_changes(pdf, changes, options, check)
        except (pikepdf.PdfError, RuntimeError) as exc:
            # qpdf reports some damage as C++ exceptions pikepdf turns into RuntimeError
            # (std::bad_cast on an object of the wrong type): the file is at fault.
            candidate.path.unlink(missing_ok=True)
            raise DamagedFileError(
                "The PDF is damaged: it could be opened but not rewritten."
            ) from exc
    _keep_smaller(source, candidate.path, output)
    return OpResult(files=[output], page_count=page_count)


def _is_signed(pdf: pikepdf.Pdf) -> bool:
    """Does a signature field hold a signature (not merely wait for one)?"""
    form = pdf.Root.get(Name.AcroForm)
    fields = form.get(Name.Fields) if isinstance(form, pikepdf.Dictionary) else None
    pending = list(fields) if isinstance(fields, pikepdf.Array) else []
    seen = pikepdf.ObjectSet()
    while pending:
        field_ = pending.pop()
        if not isinstance(field_, pikepdf.Dictionary) or not seen.add(field_):
            continue
        if field_.get(Name.FT) == Name.Sig and isinstance(field_.get(Name.V), pikepdf.Dictionary):
            return True
        kids = field_.get(Name.Kids)
        if isinstance(kids, pikepdf.Array):
            pending.extend(kids)
    return False


# -- lossless structure --------------------------------------------------------------------


def _pdfa_status(pdf: pikepdf.Pdf) -> str:
    """The PDF/A part and level the document claims ('1B', '2U'...), or ''."""
    try:
        return pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False).pdfa_status
    except Exception:  # noqa: BLE001
        # XMP parsing can fail in many ways (lxml, encodings); a packet that cannot be
        # read declares nothing we could honour.
        return ""


def _tidy_structure(pdf: pikepdf.Pdf, compress_metadata: bool) -> None:
    _drop_bogus_info(pdf)
    _drop_page_extras(pdf)
    streams = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream)]
    _simplify_filter_arrays(streams)
    if compress_metadata:  # PDF/A forbids filters on metadata streams
        _compress_metadata(pdf, streams)
    _merge_duplicate_streams(pdf, streams)


def _drop_bogus_info(pdf: pikepdf.Pdf) -> None:
    """An /Info that is not a plain dictionary (some files point it at the page tree)
    stops Ghostscript from opening the file at all; it holds nothing worth keeping."""
    info = pdf.trailer.get(Name.Info)
    if info is None:
        return
    pages = pdf.Root.get(Name.Pages)
    if (
        not isinstance(info, pikepdf.Dictionary)
        or info.is_same_object_as(pdf.Root)
        or (pages is not None and info.is_same_object_as(pages))
    ):
        del pdf.trailer[Name.Info]


def _simplify_filter_arrays(streams: list[pikepdf.Stream]) -> None:
    """`/Filter [/FlateDecode]` → `/FlateDecode`: qpdf does not see a one-element array
    as compressed and would inflate and deflate the whole stream again on save."""
    for obj in streams:
        filters = obj.get(Name.Filter)
        if isinstance(filters, pikepdf.Array) and len(filters) == 1:
            parms = obj.get(Name.DecodeParms)
            obj.Filter = filters[0]
            if isinstance(parms, pikepdf.Array):
                if len(parms) == 1 and isinstance(parms[0], pikepdf.Dictionary):
                    obj.DecodeParms = parms[0]
                else:
                    del obj.DecodeParms


def _drop_page_extras(pdf: pikepdf.Pdf) -> None:
    """Embedded thumbnails (viewers draw their own) and /PieceInfo (the private editing
    data of the application that made the file, as Acrobat's optimizer also drops)."""
    for page in pdf.pages:
        for key in (Name.Thumb, Name.PieceInfo):
            if key in page.obj:
                del page.obj[key]
    if Name.PieceInfo in pdf.Root:
        del pdf.Root[Name.PieceInfo]


def _compress_metadata(pdf: pikepdf.Pdf, streams: list[pikepdf.Stream]) -> None:
    """Flate-compress XMP packets attached to images and pages. The document's own packet
    stays plain text, as tools that scan files for XMP expect."""
    document_packet = pdf.Root.get(Name.Metadata)
    for obj in streams:
        if (
            obj.get(Name.Type) == Name.Metadata
            and Name.Filter not in obj
            and not (document_packet is not None and obj.is_same_object_as(document_packet))
        ):
            try:
                packet = obj.read_bytes()
            except pikepdf.PdfError:
                continue  # unreadable: leave it exactly as it is
            obj.write(zlib.compress(packet, 9), filter=Name.FlateDecode)


def _merge_duplicate_streams(pdf: pikepdf.Pdf, streams: list[pikepdf.Stream]) -> None:
    """Point every reference to a byte-identical copy of a stream at one of them."""
    first_of: dict[tuple[bytes, bytes], pikepdf.Stream] = {}
    duplicates: dict[ObjGen, pikepdf.Stream] = {}
    for obj in streams:
        key = _stream_key(obj)
        if key is None:
            continue
        original = first_of.setdefault(key, obj)
        if original is not obj and not original.is_same_object_as(obj):
            duplicates[obj.objgen] = original
    if duplicates:
        _redirect_references(pdf, duplicates)


def _stream_key(stream: pikepdf.Stream) -> tuple[bytes, bytes] | None:
    try:
        raw = stream.read_raw_bytes()
        entries = pikepdf.Dictionary(
            {key: value for key, value in stream.stream_dict.items() if key != "/Length"}
        )
        return hashlib.sha256(raw).digest(), entries.unparse()
    except (pikepdf.PdfError, RuntimeError):  # qpdf's std::bad_cast on a damaged dictionary
        return None


def _redirect_references(pdf: pikepdf.Pdf, targets: dict[ObjGen, pikepdf.Stream]) -> None:
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary | pikepdf.Stream | pikepdf.Array):
            _redirect_in(obj, targets, depth=0)


def _redirect_in(
    container: pikepdf.Object, targets: dict[ObjGen, pikepdf.Stream], depth: int
) -> None:
    if depth > 32:  # direct objects nested this deep are malformed; leave them
        return
    if isinstance(container, pikepdf.Array):
        entries: Any = enumerate(list(container))
    else:
        entries = list(container.items())
    for key, value in entries:
        if not isinstance(value, pikepdf.Dictionary | pikepdf.Stream | pikepdf.Array):
            continue
        if value.is_indirect:
            target = targets.get(value.objgen)
            if target is not None:
                container[key] = target
        else:
            _redirect_in(value, targets, depth + 1)


# -- images --------------------------------------------------------------------------------


def _recompress_images(
    pdf: pikepdf.Pdf, options: RecompressOptions
) -> dict[ObjGen, _ImageChange]:
    try:
        placements = find_image_placements(pdf)
    except (pikepdf.PdfError, ValueError, TypeError, RecursionError):
        return {}  # a page tree or resources too broken to follow: lossless work only
    changes: dict[ObjGen, _ImageChange] = {}
    for objgen, use in placements.uses.items():
        if objgen in placements.unsafe:
            continue
        image = pdf.get_object(objgen)
        if not isinstance(image, pikepdf.Stream):
            continue
        encoded = recompress_image(image, use.dpi, options)
        if encoded is None:
            continue
        changes[objgen] = _ImageChange(
            StreamSnapshot.of(image), dict(use.pages), use.dpi, encoded.lossy
        )
        replace_image(image, encoded)
    return changes


def _undo_visible_changes(
    pdf: pikepdf.Pdf,
    changes: dict[ObjGen, _ImageChange],
    options: RecompressOptions,
    check: _LookCheck,
) -> None:
    """Compare every page whose images lost detail; where one looks different, try its
    images again at a higher JPEG quality, then put back the originals if still needed."""
    spoiled = _pages_that_look_different(check, _pages_to_compare(changes))
    if not spoiled:
        return
    gentler = _gentler(options)
    if gentler is not None and _reencode_images_on(pdf, changes, spoiled, gentler):
        check.candidate.save(pdf)
        spoiled = _pages_that_look_different(check, spoiled)
    if _restore_images_on(pdf, changes, spoiled):
        check.candidate.save(pdf)


def _pages_to_compare(changes: dict[ObjGen, _ImageChange]) -> set[int]:
    """Pages that show every lossy change: for an image on many pages (a logo, say), the
    few where it is drawn largest stand for the rest, so that long documents stay cheap."""
    pages: set[int] = set()
    for change in changes.values():
        if change.lossy:
            largest_first = sorted(change.pages, key=lambda page: (change.pages[page], page))
            pages.update(largest_first[:_PAGES_PER_SHARED_IMAGE])
    return pages


def _gentler(options: RecompressOptions) -> RecompressOptions | None:
    """Options for a second try on pages that looked different, if there is one."""
    if options.image_format is not ImageFormat.JPEG or options.jpeg_quality >= _RETRY_QUALITY:
        return None
    return replace(options, jpeg_quality=_RETRY_QUALITY)


def _reencode_images_on(
    pdf: pikepdf.Pdf,
    changes: dict[ObjGen, _ImageChange],
    pages: set[int],
    options: RecompressOptions,
) -> bool:
    """Encode again, from the originals, the lossy-changed images drawn on `pages`."""
    redone = False
    for objgen, change in changes.items():
        if not (change.lossy and change.pages.keys() & pages):
            continue
        image = pdf.get_object(objgen)
        change.snapshot.restore(image)
        encoded = recompress_image(image, change.dpi, options)
        if encoded is not None:
            replace_image(image, encoded)
        change.lossy = encoded is not None and encoded.lossy
        redone = True
    return redone


def _pages_that_look_different(check: _LookCheck, pages: set[int]) -> set[int]:
    """Pages of the candidate whose rendering is not close enough to the original's."""
    if not pages:
        return set()
    try:
        with (
            pdfium_document(check.original, check.password) as before,
            pdfium_document(check.candidate.path, check.password) as after,
        ):
            return {index for index in pages if not _page_looks_same(check, before, after, index)}
    except DamagedFileError:
        # PDFium cannot read one of the two files, so nothing can be checked: every lossy
        # change is undone rather than kept unverified.
        return set(pages)


def _page_looks_same(
    check: _LookCheck, before: pdfium.PdfDocument, after: pdfium.PdfDocument, index: int
) -> bool:
    try:
        if index not in check.renderings:
            check.renderings[index] = render_gray(before[index], COMPARE_DPI)
        score = ssim(check.renderings[index], render_gray(after[index], COMPARE_DPI))
    except Exception:  # noqa: BLE001
        # A page PDFium fails to render (pypdfium2 raises several error types) counts as
        # spoiled: its images go back to the originals.
        return False
    return score >= MIN_PAGE_SSIM


def _restore_images_on(
    pdf: pikepdf.Pdf, changes: dict[ObjGen, _ImageChange], pages: set[int]
) -> bool:
    """Put back every lossy-changed image drawn on `pages`; True if any was."""
    restored = False
    for objgen, change in changes.items():
        if change.lossy and change.pages.keys() & pages:
            change.snapshot.restore(pdf.get_object(objgen))
            change.lossy = False
            restored = True
    return restored


# -- output --------------------------------------------------------------------------------


def _keep_smaller(source: Path, candidate: Path, output: Path) -> None:
    """The optimized file if it is smaller, otherwise the input bytes unchanged."""
    if candidate.stat().st_size < source.stat().st_size:
        candidate.replace(output)
    else:
        shutil.copyfile(source, output)
        candidate.unlink()


OPERATION = register(
    Operation(
        name="optimize",
        paths=("/pdf/optimize",),
        params=Params,
        run=optimize_pdf,
        result=ResultShape.ONE_FILE,
        extension="pdf",
        summary="Make a PDF smaller: recompress and downsample images, compact the structure.",
    )
)
