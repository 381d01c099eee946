"""Where each image XObject is drawn: on which pages, and at what effective resolution.

Downsampling needs an image's resolution as the reader sees it, which depends on the
size it is painted at, not on its pixel count. This module follows the graphics state
(`q`/`Q`/`cm`, Form XObject matrices) through page content streams and records, for each
image, the pages it appears on and the lowest pixels-per-inch of all its placements.
Images drawn somewhere this walk cannot see (patterns, annotation appearances, Type 3
glyphs, soft masks) are reported as `unsafe`, so that callers leave them alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Name

ObjGen = tuple[int, int]
# The linear part (a, b, c, d) of a PDF matrix; translation never changes sizes.
Linear = tuple[float, float, float, float]

_IDENTITY: Linear = (1.0, 0.0, 0.0, 1.0)
# Forms nested deeper than this are malformed or hostile; their images are not touched.
_MAX_FORM_DEPTH = 12


@dataclass
class ImageUse:
    """How one image XObject is used by the pages of a document."""

    # Page index → lowest effective resolution of the image on that page (pixels per
    # inch, the smaller of the two axes; infinity for a degenerate placement).
    pages: dict[int, float] = field(default_factory=dict)

    @property
    def dpi(self) -> float:
        """The resolution at the image's largest placement anywhere in the document."""
        return min(self.pages.values(), default=math.inf)


@dataclass
class ImagePlacements:
    uses: dict[ObjGen, ImageUse]
    # Images reachable in ways the content walk does not measure.
    unsafe: set[ObjGen]


def find_image_placements(pdf: pikepdf.Pdf) -> ImagePlacements:
    """Walk every page's content and measure where its image XObjects are drawn."""
    walker = _PlacementWalker()
    for index, page in enumerate(pdf.pages):
        walker.walk_page(index, page.obj)
    unsafe = walker.unsafe | _images_drawn_outside_pages(pdf)
    return ImagePlacements(uses=walker.uses, unsafe=unsafe)


def _multiply(first: Linear, second: Linear) -> Linear:
    """`first × second` in PDF's row-vector convention (apply `first`, then `second`)."""
    a1, b1, c1, d1 = first
    a2, b2, c2, d2 = second
    return (a1 * a2 + b1 * c2, a1 * b2 + b1 * d2, c1 * a2 + d1 * c2, c1 * b2 + d1 * d2)


def _linear(operands: list[pikepdf.Object] | pikepdf.Array) -> Linear | None:
    try:
        a, b, c, d = (float(value) for value in list(operands)[:4])
    except (TypeError, ValueError):
        return None
    values = (a, b, c, d)
    return values if all(math.isfinite(value) for value in values) else None


def _effective_dpi(width: int, height: int, ctm: Linear) -> float:
    """Pixels per inch of an image whose unit square is mapped by `ctm` (1 unit = 1/72 in)."""
    a, b, c, d = ctm
    shown_width = math.hypot(a, b) / 72.0
    shown_height = math.hypot(c, d) / 72.0
    if shown_width <= 0 or shown_height <= 0:
        return math.inf
    return min(width / shown_width, height / shown_height)


def _objgen(obj: pikepdf.Object) -> ObjGen | None:
    objgen = obj.objgen
    return objgen if objgen != (0, 0) else None


def _user_unit(page: pikepdf.Dictionary) -> float:
    """Size of a page's default unit in 1/72 inch (PDF 1.6 /UserUnit, usually 1)."""
    try:
        unit = float(page.get(Name.UserUnit, 1))
    except (TypeError, ValueError):
        return 1.0
    return unit if math.isfinite(unit) and unit > 0 else 1.0


def _inherited_resources(page: pikepdf.Dictionary) -> pikepdf.Dictionary | None:
    node: pikepdf.Object | None = page
    for _ in range(64):  # a /Parent cycle must not hang us
        if not isinstance(node, pikepdf.Dictionary):
            return None
        resources = node.get(Name.Resources)
        if isinstance(resources, pikepdf.Dictionary):
            return resources
        node = node.get(Name.Parent)
    return None


def _xobjects(resources: pikepdf.Object | None) -> pikepdf.Dictionary | None:
    if not isinstance(resources, pikepdf.Dictionary):
        return None
    xobjects = resources.get(Name.XObject)
    return xobjects if isinstance(xobjects, pikepdf.Dictionary) else None


class _PlacementWalker:
    """Follows the current transformation matrix through pages and the forms they draw."""

    def __init__(self) -> None:
        self.uses: dict[ObjGen, ImageUse] = {}
        self.unsafe: set[ObjGen] = set()
        # Per form: images placed by it, relative to the form's own space. A form drawn
        # on 600 pages is parsed once.
        self._form_cache: dict[ObjGen, list[tuple[ObjGen, int, int, Linear]] | None] = {}
        # Per resources dictionary: does anything under it hold an image at all?
        self._has_images: dict[ObjGen, bool] = {}

    # -- pages ------------------------------------------------------------------------

    def walk_page(self, index: int, page: pikepdf.Dictionary) -> None:
        resources = _inherited_resources(page)
        if not self._resources_have_images(resources, depth=0):
            return  # text-only pages: no need to parse their content
        try:
            instructions = pikepdf.parse_content_stream(page, "q Q cm Do")
        except (pikepdf.PdfError, ValueError, TypeError):
            self._mark_all_unsafe(resources, depth=0)
            return
        placements = self._placements_in(instructions, resources, _IDENTITY, depth=0)
        if placements is None:
            self._mark_all_unsafe(resources, depth=0)
            return
        user_unit = _user_unit(page)
        for objgen, width, height, ctm in placements:
            use = self.uses.setdefault(objgen, ImageUse())
            dpi = _effective_dpi(width, height, ctm) / user_unit
            use.pages[index] = min(use.pages.get(index, math.inf), dpi)

    def _placements_in(
        self,
        instructions: list[pikepdf.ContentStreamInstruction],
        resources: pikepdf.Dictionary | None,
        start: Linear,
        depth: int,
    ) -> list[tuple[ObjGen, int, int, Linear]] | None:
        """Images drawn by a content stream, with the matrix each is drawn with."""
        xobjects = _xobjects(resources)
        stack: list[Linear] = []
        ctm = start
        found: list[tuple[ObjGen, int, int, Linear]] = []
        for instruction in instructions:
            operator = str(instruction.operator)
            if operator == "q":
                stack.append(ctm)
            elif operator == "Q":
                ctm = stack.pop() if stack else start
            elif operator == "cm":
                matrix = _linear(instruction.operands)
                if matrix is None:
                    return None  # unknown geometry: we can no longer measure anything
                ctm = _multiply(matrix, ctm)
            elif operator == "Do" and xobjects is not None and instruction.operands:
                name = instruction.operands[0]
                xobject = xobjects.get(name) if isinstance(name, pikepdf.Name) else None
                drawn = self._drawn_by(xobject, resources, ctm, depth)
                if drawn is None:
                    return None
                found.extend(drawn)
        return found

    def _drawn_by(
        self,
        xobject: pikepdf.Object | None,
        parent_resources: pikepdf.Dictionary | None,
        ctm: Linear,
        depth: int,
    ) -> list[tuple[ObjGen, int, int, Linear]] | None:
        if not isinstance(xobject, pikepdf.Stream):
            return []
        objgen = _objgen(xobject)
        subtype = xobject.get(Name.Subtype)
        if subtype == Name.Image:
            if objgen is None:
                return []
            try:
                width, height = int(xobject.Width), int(xobject.Height)
            except (AttributeError, TypeError, ValueError):
                self.unsafe.add(objgen)
                return []
            self.unsafe |= _masks_of(xobject)
            return [(objgen, width, height, ctm)]
        if subtype != Name.Form or objgen is None:
            return []
        relative = self._form_placements(xobject, objgen, parent_resources, depth + 1)
        if relative is None:
            return None
        form_matrix = _linear(xobject.get(Name.Matrix, pikepdf.Array(_IDENTITY)))
        if form_matrix is None:
            form_matrix = _IDENTITY
        to_page = _multiply(form_matrix, ctm)
        return [(image, w, h, _multiply(inner, to_page)) for image, w, h, inner in relative]

    def _form_placements(
        self,
        form: pikepdf.Stream,
        objgen: ObjGen,
        parent_resources: pikepdf.Dictionary | None,
        depth: int,
    ) -> list[tuple[ObjGen, int, int, Linear]] | None:
        if objgen in self._form_cache:
            return self._form_cache[objgen]
        if depth > _MAX_FORM_DEPTH:
            return None
        self._form_cache[objgen] = None  # a form that draws itself is refused, not followed
        # Old PDFs leave a form's /Resources out and rely on the page's.
        resources = form.get(Name.Resources, parent_resources)
        if not self._resources_have_images(resources, depth):
            placements: list[tuple[ObjGen, int, int, Linear]] | None = []
        else:
            try:
                instructions = pikepdf.parse_content_stream(form, "q Q cm Do")
            except (pikepdf.PdfError, ValueError, TypeError):
                instructions = None
            placements = (
                None
                if instructions is None
                else self._placements_in(instructions, resources, _IDENTITY, depth)
            )
        if placements is None:
            self._mark_all_unsafe(resources, depth)
        self._form_cache[objgen] = placements
        return placements

    # -- reachability -----------------------------------------------------------------

    def _resources_have_images(self, resources: pikepdf.Object | None, depth: int) -> bool:
        xobjects = _xobjects(resources)
        if xobjects is None:
            return False
        key = _objgen(xobjects)
        if key is not None and key in self._has_images:
            return self._has_images[key]
        if key is not None:
            self._has_images[key] = False  # cycle guard
        answer = any(
            self._xobject_has_images(xobject, depth) for xobject in xobjects.values()
        )
        if key is not None:
            self._has_images[key] = answer
        return answer

    def _xobject_has_images(self, xobject: pikepdf.Object, depth: int) -> bool:
        if not isinstance(xobject, pikepdf.Stream):
            return False
        subtype = xobject.get(Name.Subtype)
        if subtype == Name.Image:
            return True
        if subtype == Name.Form and depth < _MAX_FORM_DEPTH:
            return self._resources_have_images(xobject.get(Name.Resources), depth + 1)
        return False

    def _mark_all_unsafe(self, resources: pikepdf.Object | None, depth: int) -> None:
        self.unsafe.update(_images_under(resources, depth))



def _images_drawn_outside_pages(pdf: pikepdf.Pdf) -> set[ObjGen]:
    """Images in annotation appearances, tiling patterns, Type 3 glyphs and soft masks."""
    found: set[ObjGen] = set()
    for scope in pdf.content_scopes(kinds=("appearance", "pattern", "glyph", "softmask")):
        found |= _images_under(scope.resources, depth=0)
    return found


def _images_under(resources: pikepdf.Object | None, depth: int) -> set[ObjGen]:
    """Every image XObject reachable from a resources dictionary, forms included."""
    found: set[ObjGen] = set()
    xobjects = _xobjects(resources)
    if xobjects is None or depth > _MAX_FORM_DEPTH:
        return found
    for xobject in xobjects.values():
        if not isinstance(xobject, pikepdf.Stream):
            continue
        subtype = xobject.get(Name.Subtype)
        if subtype == Name.Image and _objgen(xobject) is not None:
            found.add(xobject.objgen)
            found |= _masks_of(xobject)
        elif subtype == Name.Form:
            found |= _images_under(xobject.get(Name.Resources), depth + 1)
    return found


def _masks_of(image: pikepdf.Stream) -> set[ObjGen]:
    masks = (image.get(Name.SMask), image.get(Name.Mask))
    return {mask.objgen for mask in masks if isinstance(mask, pikepdf.Stream) and _objgen(mask)}
