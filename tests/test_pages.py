"""0-based page ranges as PDF.co clients write them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docmill.errors import PageRangeError, TooLargeError
from docmill.pages import parse_page_ranges


@pytest.mark.parametrize(
    ("spec", "count", "expected"),
    [
        ("", 3, [0, 1, 2]),
        (None, 2, [0, 1]),
        ("0", 5, [0]),
        ("0,2-4", 6, [0, 2, 3, 4]),
        ("7-", 9, [7, 8]),
        ("-1", 4, [0, 1]),
        ("!0", 10, [9]),
        ("1-!1", 5, [1, 2, 3]),
        ("!1-!0", 5, [3, 4]),
        (" 0 , 2 ", 3, [0, 2]),
        ("2,0", 3, [2, 0]),
    ],
)
def test_page_ranges(spec, count, expected):
    assert parse_page_ranges(spec, count) == expected


@pytest.mark.parametrize("spec", ["5", "3-1", "a", "1-b", "!9", "0-99", ",", "1--2"])
def test_bad_page_ranges_are_error_450(spec):
    with pytest.raises(PageRangeError) as caught:
        parse_page_ranges(spec, 4)
    assert caught.value.status == 450


@given(st.text(max_size=30), st.integers(min_value=1, max_value=50))
def test_any_text_gives_valid_pages_or_error_450(spec, count):
    try:
        pages = parse_page_ranges(spec, count)
    except PageRangeError:
        return
    assert pages and all(0 <= page < count for page in pages)


def test_more_pages_than_docmill_max_pages_is_413(monkeypatch):
    monkeypatch.setenv("DOCMILL_MAX_PAGES", "3")
    assert parse_page_ranges("0-2", 14) == [0, 1, 2]
    for spec in ("", "0-3", "0,0,0,0", "0-," * 1000):
        with pytest.raises(TooLargeError, match="DOCMILL_MAX_PAGES"):
            parse_page_ranges(spec, 14)
