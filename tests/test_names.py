"""Output and upload file names are sanitised."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docmill.names import sanitize_file_name, sanitize_name

UNSAFE_IN_URLS = set("&#,+ %?/\\")


@pytest.mark.parametrize(
    ("name", "extension", "expected"),
    [
        (".\\result.pdf", "pdf", "result.pdf"),
        ("result.txt", "txt", "result.txt"),
        ("result", "txt", "result.txt"),
        ("report.docx", "pdf", "report.pdf"),
        ("", "pdf", "input.pdf"),
        ("../../etc/passwd", "pdf", "passwd.pdf"),
        ("C:\\Users\\me\\my file&x.PDF", "pdf", "my_file_x.PDF"),
        ("...", "png", "input.png"),
    ],
)
def test_sanitize_name(name, extension, expected):
    assert sanitize_name(name, "input", extension) == expected


@given(st.text(max_size=300))
def test_names_are_always_safe_in_urls(name):
    for result in (sanitize_name(name, "result", "pdf"), sanitize_file_name(name)):
        assert result and not (set(result) & UNSAFE_IN_URLS)
        assert not result.startswith(".") and len(result) <= 200
