"""Shared fixtures: the corpus of real documents and its manifest."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("DOCMILL_CORPUS", REPO.parent / "shared" / "corpus"))


def corpus_manifest() -> list[dict[str, str]]:
    """Rows of MANIFEST.tsv: file, kind, pages, note..."""
    with open(CORPUS / "MANIFEST.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def corpus_files(kind_prefix: str) -> list[Path]:
    """Corpus files whose manifest kind starts with `kind_prefix` ('pdf', 'image/', 'doc'...)."""
    return [CORPUS / row["file"] for row in corpus_manifest() if row["kind"].startswith(kind_prefix)]


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"corpus not found at {CORPUS}; set DOCMILL_CORPUS")
    return CORPUS
