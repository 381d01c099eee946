"""S3 storage against a real S3-compatible server (moto): presigned links, streaming
transfers, recognising our own links, expiry by sweeping."""

import hashlib
import os
import time
import uuid

import pytest
import requests

from docmill.config import ConfigurationError
from docmill.errors import InputURLError, TooLargeError
from docmill.inputs.fetcher import FetchPolicy
from docmill.inputs.resolve import resolve_inputs
from docmill.storage.s3 import S3Storage, file_expiry, parse_s3_url
from tests.cluster import AWS_ENV, s3_client


@pytest.fixture
def storage(s3_backend, tmp_path, monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    # A prefix of its own per test: tests do not see each other's files.
    url = s3_backend.url.replace("?", f"/t{uuid.uuid4().hex[:8]}?")
    return S3Storage(url, tmp_path / "scratch")


def test_presigned_put_then_get_go_straight_to_the_bucket(storage):
    file_id = storage.new_file_id(time.time() + 600)
    put = storage.upload_url("", file_id, "a.pdf", time.time() + 60)
    answer = requests.put(put, data=b"%PDF-1.4 hello",
                          headers={"content-type": "application/octet-stream", "x-api-key": "k"},
                          timeout=10)
    assert answer.status_code == 200
    get = storage.file_url("", file_id, "a.pdf", time.time() + 60)
    assert requests.get(get, timeout=10).content == b"%PDF-1.4 hello"
    key = get.split("?")[0]
    assert not set(key.partition("//")[2]) & set("&#,+ ")
    assert storage.single_file_name(file_id) == "a.pdf"


def test_own_links_are_recognised_even_cut_at_the_first_ampersand(storage):
    file_id = storage.new_file_id(time.time() + 600)
    url = storage.file_url("", file_id, "doc.pdf", time.time() + 600)
    for variant in (url, url.split("&")[0], url.split("?")[0]):
        link = storage.parse_link(variant)
        assert (link.file_id, link.name, link.problem) == (file_id, "doc.pdf", None)
    assert storage.parse_link("http://elsewhere.example/bucket/" + file_id + "/doc.pdf") is None
    assert storage.parse_link(url.replace(file_id, "not-an-id")) is None
    expired = storage.new_file_id(time.time() - 1)
    assert storage.parse_link(url.replace(file_id, expired)).problem == "link expired"
    assert file_expiry(file_id) == pytest.approx(time.time() + 600, abs=2)


def test_big_files_stream_through_multipart_both_ways(storage, tmp_path):
    source = tmp_path / "big.bin"
    with open(source, "wb") as handle:  # 40 MiB: above the 16 MiB multipart threshold
        for _ in range(40):
            handle.write(os.urandom(1024 * 1024))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    file_id = storage.new_file_id(time.time() + 600)
    storage.save_file(file_id, "big.bin", source, time.time() + 600)
    target = storage.copy_to(file_id, "big.bin", tmp_path / "back.bin", 64 * 1024 * 1024)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    with pytest.raises(TooLargeError):
        storage.copy_to(file_id, "big.bin", tmp_path / "no.bin", 1024 * 1024)
    with pytest.raises(InputURLError, match="not found"):
        storage.copy_to(file_id, "missing.bin", tmp_path / "no.bin", 1024)


def test_inputs_given_by_our_own_link_are_read_through_the_s3_api(storage, tmp_path):
    file_id = storage.new_file_id(time.time() + 600)
    storage.save_bytes(file_id, "in.txt", b"hello", time.time() + 600)
    link = storage.file_url("", file_id, "in.txt", time.time() + 600)
    # The fetcher would refuse a loopback URL: the bytes must come through the S3 API.
    policy = FetchPolicy(allow_private=False)
    paths = resolve_inputs(f"{link.split('&')[0]},filetoken://{file_id}", tmp_path / "in",
                           storage, policy)
    assert [path.read_bytes() for path in paths] == [b"hello", b"hello"]


def test_sweep_deletes_expired_files_only(storage, s3_backend):
    now = time.time()
    old = [storage.new_file_id(now - 100), storage.new_file_id(now - 5)]
    alive = storage.new_file_id(now + 100)
    for file_id in [*old, alive]:
        storage.save_bytes(file_id, "a.txt", b"x", now)
        storage.save_bytes(file_id, "b.txt", b"y", now)
    client = s3_client(storage.location.endpoint)
    foreign = f"{storage.prefix}README"
    client.put_object(Bucket=storage.bucket, Key=foreign, Body=b"not ours")
    assert storage.sweep(now) == 2
    keys = {item["Key"] for item in
            client.list_objects_v2(Bucket=storage.bucket, Prefix=storage.prefix)["Contents"]}
    assert keys == {f"{storage.prefix}{alive}/a.txt", f"{storage.prefix}{alive}/b.txt", foreign}
    assert storage.delete(alive) and not storage.delete(alive)


def test_health_check_reports_an_unreachable_store(tmp_path, monkeypatch):
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    dead = S3Storage("s3://bucket?endpoint=http://127.0.0.1:9&region=us-east-1", tmp_path)
    status = dead.check()
    assert status["ok"] is False and status["error"]


@pytest.mark.parametrize("url", ["http://bucket", "s3://", "s3://b?colour=red",
                                 "s3://b?endpoint=http://h&addressing=sideways"])
def test_bad_storage_urls_say_how_to_fix_them(url):
    with pytest.raises(ConfigurationError, match="DOCMILL_STORAGE"):
        parse_s3_url(url)


def test_storage_url_options():
    location = parse_s3_url("s3://bkt/some/prefix/?endpoint=http://h:9000&region=eu-west-1"
                            "&public_endpoint=https://files.example")
    assert (location.bucket, location.prefix, location.endpoint, location.region) == (
        "bkt", "some/prefix/", "http://h:9000", "eu-west-1")
    assert location.public_endpoint == "https://files.example" and location.addressing == "path"
    assert parse_s3_url("s3://bkt").addressing == "auto"
