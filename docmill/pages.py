"""Page-range parsing, as PDF.co clients write it.

Conversions use 0-based indices: `0,2-5,7-`, `!0` is the last page, `1-!1` the second to
the second-last page, empty means every page.
"""

from __future__ import annotations

from docmill.errors import PageRangeError, TooLargeError


def parse_page_ranges(spec: str | None, page_count: int) -> list[int]:
    """Return the 0-based page indices that `spec` selects, in the order written.

    More pages than DOCMILL_MAX_PAGES is refused with 413 (see `check_page_limit`).
    """
    limit = max_pages_per_job()
    if spec is None or not spec.strip():
        check_page_limit(page_count, limit)
        return list(range(page_count))
    pages: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        first, sep, last = _split_range(part)
        start = _resolve_index(first, page_count, default=0)
        end = _resolve_index(last, page_count, default=page_count - 1) if sep else start
        if start > end:
            raise PageRangeError(f"Invalid page range '{part}': the start is after the end.")
        pages.extend(range(start, end + 1))
        check_page_limit(len(pages), limit)  # before "0-,0-,0-..." grows a huge list
    if not pages:
        raise PageRangeError(f"Page range '{spec}' selects no pages.")
    return pages


def max_pages_per_job() -> int:
    """DOCMILL_MAX_PAGES, as seen by the process that runs the op."""
    from docmill.config import Settings

    return Settings.from_env().max_pages


def check_page_limit(page_count: int, limit: int) -> None:
    """Refuse (413) a job that would work on more pages than `limit` (DOCMILL_MAX_PAGES)."""
    if page_count > limit:
        raise TooLargeError(
            f"The job asks for more than {limit} pages, the most this server allows per job "
            "(DOCMILL_MAX_PAGES). Select fewer pages with 'pages'."
        )


def _split_range(part: str) -> tuple[str, str, str]:
    # "!1-!0" must split on the dash between the two ends, never inside "!".
    first, sep, last = part.partition("-")
    return first.strip(), sep, last.strip()


def _resolve_index(token: str, page_count: int, default: int) -> int:
    if token == "":
        return default
    from_end = token.startswith("!")
    digits = token[1:] if from_end else token
    if not (digits.isascii() and digits.isdigit()):
        raise PageRangeError(f"Invalid page number '{token}' in the page range.")
    number = int(digits)
    index = page_count - 1 - number if from_end else number
    if index < 0 or index >= page_count:
        raise PageRangeError(
            f"Page '{token}' is out of range: the document has {page_count} page(s), "
            f"numbered from 0 to {page_count - 1}."
        )
    return index
