"""Local storage: signed links, expiry, atomic writes, sweeping, no traversal."""

import time

import pytest

from docmill.storage.local import LocalStorage, new_file_id, parse_own_url
from docmill.storage.signing import check_token, make_token

SECRET = b"k" * 32


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "files", SECRET)


def test_token_round_trip_and_refusals():
    token = make_token(SECRET, "get", "a" * 32, "x.pdf", time.time() + 60)
    assert check_token(SECRET, "get", "a" * 32, "x.pdf", token) is None
    assert check_token(SECRET, "put", "a" * 32, "x.pdf", token) == "invalid link signature"
    assert check_token(SECRET, "get", "a" * 32, "y.pdf", token) == "invalid link signature"
    assert check_token(b"other", "get", "a" * 32, "x.pdf", token) == "invalid link signature"
    expiry, _, signature = token.partition(".")
    tampered = f"{int(expiry) + 1000}.{signature}"
    assert check_token(SECRET, "get", "a" * 32, "x.pdf", tampered) == "invalid link signature"
    old = make_token(SECRET, "get", "a" * 32, "x.pdf", time.time() - 1)
    assert check_token(SECRET, "get", "a" * 32, "x.pdf", old) == "link expired"
    assert check_token(SECRET, "get", "a" * 32, "x.pdf", "garbage") == "malformed link"


def test_urls_hold_no_characters_that_break_unencoded_query_strings(storage):
    file_id = new_file_id()
    for url in (storage.file_url("http://h:1/", file_id, "a-b_c.pdf", time.time() + 9e5),
                storage.upload_url("http://h:1", file_id, "a.pdf", time.time() + 60)):
        assert not set(url.partition("//")[2]) & set("&#,+ %?")


def test_save_serve_and_sweep(storage, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("hello")
    file_id = new_file_id()
    storage.save_file(file_id, "out.txt", source, time.time() + 60)
    assert storage.existing_path(file_id, "out.txt").read_text() == "hello"
    link = parse_own_url(storage.file_url("http://x", file_id, "out.txt", time.time() + 60))
    assert link.file_id == file_id and storage.check_link(link) is None
    assert storage.find_single(file_id).name == "out.txt"
    assert storage.sweep(now=time.time() + 120) == 1
    assert storage.existing_path(file_id, "out.txt") is None


def test_expired_files_are_not_served(storage):
    file_id = new_file_id()
    storage.save_bytes(file_id, "a.txt", b"x", time.time() - 1)
    assert storage.existing_path(file_id, "a.txt") is None


@pytest.mark.parametrize("name", ["../x", "..", ".meta.json", "a/b", ""])
def test_no_path_traversal(storage, name):
    with pytest.raises(ValueError):
        storage.path_of(new_file_id(), name)
    assert storage.existing_path("../../etc", "passwd") is None


def test_own_url_recognised_on_any_host_and_with_v1():
    file_id = new_file_id()
    assert parse_own_url(f"https://elsewhere/v1/files/{file_id}/1.abc/x.pdf").name == "x.pdf"
    assert parse_own_url(f"http://h/files/{file_id}/1.abc/../x.pdf") is None
    assert parse_own_url("http://h/other/path.pdf") is None
