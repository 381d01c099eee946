"""The lenient `profiles` parser."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docmill.errors import ProfilesError
from docmill.profiles import parse_profiles, profile_value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"JPEGQuality": 25}', {"JPEGQuality": 25}),
        ("{ 'JPEGQuality': 25 }", {"JPEGQuality": 25}),
        ("{ JPEGQuality: 25, ResampleImages: true }", {"JPEGQuality": 25, "ResampleImages": True}),
        ('"{\\"a\\": 1}"', {"a": 1}),
        ("", {}),
        (None, {}),
        ({"a": 1}, {"a": 1}),
    ],
)
def test_lenient_profiles(raw, expected):
    assert parse_profiles(raw) == expected


@pytest.mark.parametrize("raw", ["{{{", "[1, 2]", "42", "JPEGQuality=25", 7])
def test_unparseable_profiles_are_error_444(raw):
    with pytest.raises(ProfilesError) as caught:
        parse_profiles(raw)
    assert caught.value.status == 444


def test_profile_lookup_ignores_case():
    assert profile_value({"jpegquality": 30}, "JPEGQuality") == 30
    assert profile_value({}, "JPEGQuality", 80) == 80


@given(st.text(max_size=60))
def test_any_text_parses_to_a_dict_or_444(raw):
    with contextlib.suppress(ProfilesError):
        assert isinstance(parse_profiles(raw), dict)
