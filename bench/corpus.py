"""The corpus as the benchmarks see it: readable PDFs with their passwords, office files,
images. Files are used in place in `../shared/corpus` (or `$DOCMILL_CORPUS`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.context import log
from docmill.errors import DocmillError
from tests.conftest import CORPUS, corpus_manifest, manifest_password

Measured = TypeVar("Measured")

OFFICE_KINDS = ("doc", "docx", "rtf", "odt")


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    kind: str  # the manifest's kind: "pdf", "docx", "image/jpeg"...
    pages: int  # 0 when the manifest gives none (office files, images)
    password: str
    note: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _files() -> list[CorpusFile]:
    if not (CORPUS / "MANIFEST.tsv").is_file():
        raise SystemExit(f"bench: no corpus at {CORPUS}; set DOCMILL_CORPUS")
    files = []
    for row in corpus_manifest():
        files.append(
            CorpusFile(
                path=CORPUS / row["file"],
                kind=row["kind"],
                pages=int(row["pages"]) if row["pages"].isdigit() else 0,
                password=manifest_password(row),
                note=row["note"],
            )
        )
    return files


def readable_pdfs() -> list[CorpusFile]:
    """PDFs that open (with their password if they have one): damaged ones are left out."""
    return [item for item in _files() if item.kind == "pdf" and item.pages > 0]


def office_documents() -> list[CorpusFile]:
    """Word-processor documents: DOC, DOCX, RTF, ODT."""
    return [item for item in _files() if item.kind in OFFICE_KINDS]


def images() -> list[CorpusFile]:
    return [item for item in _files() if item.kind.startswith("image/")]


def largest_pdf() -> CorpusFile:
    """The readable PDF with the most pages (the 600+-page document)."""
    return max(readable_pdfs(), key=lambda item: item.pages)


def pick(files: list[CorpusFile], names: tuple[str, ...]) -> list[CorpusFile]:
    """The files among `files` with these names, in this order (a quick run's subset)."""
    by_name = {item.name: item for item in files}
    return [by_name[name] for name in names if name in by_name]


def measure_pdfs(
    quick: bool, quick_files: tuple[str, ...], label: str,
    measure: Callable[[CorpusFile], Measured],
) -> tuple[list[Measured], list[str]]:
    """`measure` every readable corpus PDF (a few when `quick`); failures are reported, not
    raised, so one odd file does not end a section."""
    files = readable_pdfs()
    if quick:
        files = pick(files, quick_files)
    results: list[Measured] = []
    failures: list[str] = []
    for item in files:
        log(f".. {label}: {item.name}")
        try:
            results.append(measure(item))
        except DocmillError as error:
            failures.append(f"{item.name}: {error.message}")
    return results, failures
