"""The wire contract through HTTP on a real server: parameters, answers, errors, jobs."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from tests.conftest import CORPUS, free_port, start_server, stop_server, upload, wait_for_job

TEXT_PDF = CORPUS / "pdfjs__tracemonkey.pdf"  # 14 pages
ENCRYPTED = CORPUS / "pdfplumber__password-example.pdf"  # password "test"


@pytest.fixture(scope="module")
def text_pdf_url(server):
    return upload(server, TEXT_PDF)


def post(server, path, **kwargs):
    return requests.post(server.url + path, timeout=120, **kwargs)


def get(server, path, **kwargs):
    return requests.get(server.url + path, timeout=120, **kwargs)


def wait_done(server, job_id, timeout=120):
    return wait_for_job(server.url, job_id, timeout)


# -- parameters arrive in every shape real clients send -----------------------------------------
@pytest.mark.parametrize("prefix", ["/v1", ""])
def test_sync_text_with_json_body_answers_the_full_envelope(server, text_pdf_url, prefix):
    answer = post(server, f"{prefix}/pdf/convert/to/text",
                  json={"url": text_pdf_url, "pages": "0", "name": ".\\result.txt"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["error"] is False and body["status"] == 200
    assert body["name"] == "result.txt" and body["pageCount"] == 1
    for key in ("jobId", "duration", "credits", "remainingCredits", "url"):
        assert key in body
    text = requests.get(body["url"], timeout=30).text
    assert "Trace" in text
    check = get(server, "/job/check", params={"jobid": body["jobId"]}).json()
    assert check["status"] == "success" and check["url"] == body["url"]


def test_json_body_without_content_type(server, text_pdf_url):
    data = json.dumps({"url": text_pdf_url, "pages": "1", "inline": True})
    body = post(server, "/pdf/convert/to/text", data=data,
                headers={"content-type": ""}).json()
    assert body["error"] is False and body["pageCount"] == 1 and "body" in body


def test_double_encoded_json_body(server, text_pdf_url):
    data = json.dumps(json.dumps({"url": text_pdf_url, "pages": "0-1"}))
    body = post(server, "/pdf/convert/to/text", data=data,
                headers={"content-type": "application/json"}).json()
    assert body["pageCount"] == 2


def test_form_body_labelled_as_json(server, text_pdf_url):
    body = post(server, "/pdf/convert/to/text", data=f"url={text_pdf_url}&pages=2",
                headers={"content-type": "application/json"}).json()
    assert body["pageCount"] == 1


def test_unencoded_query_string_and_mixed_sources(server, text_pdf_url):
    # The vendor's GET clients build query strings by string formatting, unencoded.
    answer = requests.get(
        f"{server.url}/pdf/convert/to/text?async=False&name=mixed.txt&pages=0&url={text_pdf_url}",
        timeout=60,
    ).json()
    assert answer["name"] == "mixed.txt" and answer["pageCount"] == 1
    mixed = post(server, "/pdf/convert/to/text?name=fromquery.txt",
                 data={"url": text_pdf_url, "pages": "0"}).json()
    assert mixed["name"] == "fromquery.txt"


@pytest.mark.parametrize("flag", ["True", "true", "1", True])
def test_boolean_spellings(server, text_pdf_url, flag):
    body = post(server, "/pdf/convert/to/text",
                json={"url": text_pdf_url, "pages": "0", "inline": flag}).json()
    assert body["body"].strip()


def test_unknown_parameters_are_ignored(server, text_pdf_url):
    body = post(server, "/pdf/convert/to/text",
                json={"url": text_pdf_url, "pages": "0", "somethingNew": 5}).json()
    assert body["error"] is False


def test_inline_text_puts_the_text_in_body(server, text_pdf_url):
    body = post(server, "/pdf/convert/to/text",
                json={"url": text_pdf_url, "pages": "0,1", "inline": "true"}).json()
    assert body["body"].count("\f") == 2


def test_expiration_sets_link_lifetime(server, text_pdf_url):
    before = time.time()
    body = post(server, "/pdf/convert/to/text",
                json={"url": text_pdf_url, "pages": "0", "expiration": 5}).json()
    expiry = int(body["url"].split("/")[-2].split(".")[0])
    assert before + 5 * 60 - 5 <= expiry <= time.time() + 5 * 60 + 5


# -- async jobs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("id_key", ["jobid", "jobId", "JobId"])
def test_async_job_url_is_404_until_done_then_the_result(server, text_pdf_url, id_key):
    accepted = post(server, "/v1/pdf/convert/to/text",
                    data={"url": text_pdf_url, "async": "True", "name": "a.txt"}).json()
    assert accepted["error"] is False and accepted["jobId"] and accepted["url"]
    assert accepted["name"] == "a.txt"
    status = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = post(server, "/v1/job/check", json={id_key: accepted["jobId"]}).json()
        if status["status"] != "working":
            break
        assert requests.get(accepted["url"], timeout=10).status_code == 404
        time.sleep(0.1)
    assert status["status"] == "success" and status["url"] == accepted["url"]
    assert status["pageCount"] == 14
    assert requests.get(accepted["url"], timeout=10).text.count("\f") == 14


def test_async_png_url_points_to_a_json_list(server, text_pdf_url):
    accepted = post(server, "/pdf/convert/to/png",
                    json={"url": text_pdf_url, "async": True, "pages": "0-2"}).json()
    assert wait_done(server, accepted["jobId"])["status"] == "success"
    urls = requests.get(accepted["url"], timeout=10).json()
    assert len(urls) == 3
    assert requests.get(urls[0], timeout=10).content[:8] == b"\x89PNG\r\n\x1a\n"


def test_sync_png_answers_urls(server, text_pdf_url):
    body = post(server, "/pdf/convert/to/png", json={"url": text_pdf_url, "pages": "0,!0"}).json()
    assert len(body["urls"]) == 2 and body["pageCount"] == 2


def test_async_failure_is_reported_by_job_check(server):
    damaged = upload(server, CORPUS / "pdfjs__poppler-742-0-fuzzed.pdf")
    accepted = post(server, "/pdf/convert/to/text", json={"url": damaged, "async": True}).json()
    status = wait_done(server, accepted["jobId"])
    assert status["status"] == "failed" and status["message"] and status["errorCode"] == 442


def test_unknown_job_id_is_working_unless_forced(server):
    assert get(server, "/job/check", params={"jobid": "nope"}).json()["status"] == "working"
    forced = get(server, "/job/check", params={"jobid": "nope", "force": "true"}).json()
    assert forced["status"] == "unknown"


# -- errors with their PDF.co codes, sync and async ---------------------------------------------
@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"pages": "99"}, 450),
        ({"pages": "x-y"}, 450),
        ({"profiles": "{not json"}, 444),
        ({"expiration": "soon"}, 454),
    ],
)
@pytest.mark.parametrize("asynchronous", [False, True])
def test_parameter_errors(server, text_pdf_url, params, code, asynchronous):
    answer = post(server, "/pdf/convert/to/text",
                  json={"url": text_pdf_url, "async": asynchronous, **params})
    if answer.status_code == 200:  # detected by the worker: reported by /job/check
        status = wait_done(server, answer.json()["jobId"])
        assert status["status"] == "failed" and status["errorCode"] == code
    else:
        assert answer.status_code == code
        assert answer.json()["error"] is True and answer.json()["status"] == code


@pytest.mark.parametrize(
    ("password", "code"), [("", 441), ("wrong", 441), ("test", 200)]
)
def test_passwords(server, password, code):
    url = upload(server, ENCRYPTED)
    answer = post(server, "/pdf/convert/to/text", json={"url": url, "password": password})
    assert answer.status_code == code, answer.text
    if code != 200:
        assert answer.json()["message"]


@pytest.mark.parametrize("damaged", ["pdfplumber__empty.pdf", "pdfjs__poppler-742-0-fuzzed.pdf"])
def test_damaged_input_is_442(server, damaged):
    answer = post(server, "/pdf/convert/to/png", json={"url": upload(server, CORPUS / damaged)})
    assert answer.status_code == 442 and answer.json()["error"] is True


def test_unreachable_input_url_is_400(server):
    answer = post(server, "/pdf/convert/to/text",
                  json={"url": f"http://127.0.0.1:{free_port()}/missing.pdf"})
    assert answer.status_code == 400


def test_missing_url_is_446(server):
    assert post(server, "/pdf/convert/to/text", json={}).status_code == 446


def test_unknown_route_gets_the_error_envelope(server):
    answer = get(server, "/v1/pdf/no/such/thing")
    assert answer.status_code == 404 and answer.json()["error"] is True


# -- files ----------------------------------------------------------------------------------------
def test_multipart_and_base64_uploads(server):
    with open(TEXT_PDF, "rb") as handle:
        uploaded = post(server, "/v1/file/upload", files={"file": ("my doc.pdf", handle)}).json()
    assert uploaded["name"] == "my_doc.pdf"
    assert requests.get(uploaded["url"], timeout=10).content == TEXT_PDF.read_bytes()
    encoded = base64.b64encode(b"hello").decode()
    as_base64 = post(server, "/file/upload/base64",
                     json={"file": f"data:text/plain;base64,{encoded}", "name": "h.txt"}).json()
    assert requests.get(as_base64["url"], timeout=10).content == b"hello"


def test_tampered_or_foreign_links_are_refused(server, text_pdf_url):
    head, token, name = text_pdf_url.rsplit("/", 2)
    expiry, signature = token.split(".")
    tampered = f"{head}/{int(expiry) + 99}.{signature}/{name}"
    assert requests.get(tampered, timeout=10).status_code == 403
    assert requests.get(f"{head}/{token}/other.pdf", timeout=10).status_code == 403
    answer = post(server, "/pdf/convert/to/text", json={"url": tampered})
    assert answer.status_code == 403
    assert requests.get(text_pdf_url, timeout=10).headers["x-content-type-options"] == "nosniff"


def test_put_with_bad_signature_refused(server):
    answer = get(server, "/file/upload/get-presigned-url", params={"name": "a.pdf"}).json()
    head, token, name = answer["presignedUrl"].rsplit("/", 2)
    bad = f"{head}/{token[:-10]}xxxxxxxxxx/{name}"
    assert requests.put(bad, data=b"x", timeout=10).status_code == 403


def test_file_delete(server):
    url = upload(server, TEXT_PDF)
    assert post(server, "/file/delete", json={"file": url}).json()["error"] is False
    assert requests.get(url, timeout=10).status_code == 404


def test_health_reports_workers_and_queue(server):
    health = get(server, "/health")
    assert health.status_code == 200
    summary = health.json()
    assert summary["workers"]["alive"] >= 2 and "depth" in summary["queue"]


def test_health_reports_the_embedded_backends(server):
    backends = get(server, "/health").json()["backends"]
    assert backends["store"] == {"backend": "sqlite", "ok": True}
    assert backends["queue"] == {"backend": "sqlite", "ok": True}
    assert backends["storage"] == {"backend": "local", "ok": True}


def test_metrics_in_prometheus_format(server, text_pdf_url):
    from prometheus_client.parser import text_string_to_metric_families

    post(server, "/pdf/convert/to/png", json={"url": text_pdf_url, "pages": "0"})
    answer = get(server, "/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    assert {"docmill_queue_depth", "docmill_jobs", "docmill_job_duration_seconds",
            "docmill_workers", "docmill_backend_up"} <= set(families)
    counts = [sample for sample in families["docmill_job_duration_seconds"].samples
              if sample.name.endswith("_count") and sample.labels["operation"] == "pdf_to_png"]
    assert counts and counts[0].value >= 1


def test_credit_balance(server):
    assert get(server, "/v1/account/credit/balance").json()["remainingCredits"] > 0


# -- a second server: keys required, no workers, short sync limit --------------------------------
@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    running = start_server(
        tmp_path_factory.mktemp("keyed"), workers=0,
        extra_env={"DOCMILL_API_KEYS": "key-one, key-two", "DOCMILL_SYNC_TIMEOUT": "1"},
        extra_args=["--no-workers"],
    )
    yield running
    stop_server(running)


def test_api_keys_required_when_configured(keyed_server):
    path = "/v1/file/upload/get-presigned-url?name=a.pdf"
    assert requests.get(keyed_server.url + path, timeout=10).status_code == 401
    wrong = requests.get(keyed_server.url + path, headers={"x-api-key": "nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] is True
    right = requests.get(keyed_server.url + path, headers={"x-api-key": "key-two"}, timeout=10)
    assert right.status_code == 200
    check = requests.get(keyed_server.url + "/job/check?jobid=x", timeout=10)
    assert check.status_code == 401


def test_slow_sync_request_answers_445_and_the_job_goes_on(keyed_server):
    headers = {"x-api-key": "key-one"}
    answer = requests.post(keyed_server.url + "/pdf/convert/to/text", headers=headers,
                           json={"url": "http://127.0.0.1:9/a.pdf"}, timeout=30)
    assert answer.status_code == 445 and answer.json()["jobId"]
    status = requests.get(keyed_server.url + "/job/check", headers=headers,
                          params={"jobid": answer.json()["jobId"]}, timeout=10).json()
    assert status["status"] == "working"


# -- the other operations through HTTP ----------------------------------------------------------
def test_images_to_pdf_from_a_comma_list_with_spaces(server):
    first = upload(server, CORPUS / "ocrmypdf__baiona_color.jpg")
    second = upload(server, CORPUS / "unstructured__layout-parser-paper-combined.tiff")
    body = post(server, "/pdf/convert/from/image",
                json={"url": f" {first} ,  {second} ", "name": "album"}).json()
    assert body["error"] is False and body["pageCount"] == 3 and body["name"] == "album.pdf"


def test_doc_to_pdf_sync_and_unsupported_type(server):
    docx = upload(server, CORPUS / "docling__word_sample.docx")
    body = post(server, "/pdf/convert/from/doc", data={"url": docx}).json()
    assert body["error"] is False and body["pageCount"] >= 1
    assert requests.get(body["url"], timeout=30).content[:5] == b"%PDF-"
    png = upload(server, CORPUS / "ocrmypdf__baiona_alpha.png")
    answer = post(server, "/pdf/convert/from/doc", json={"url": png})
    assert answer.status_code == 415 and answer.json()["error"] is True


def test_optimize_with_javascript_like_profiles(server):
    source = CORPUS / "pdfjs__images.pdf"
    url = upload(server, source)
    body = post(server, "/pdf/optimize",
                json={"url": url, "profiles": "{ 'JPEGQuality': 25, ResampleImages: true }"}).json()
    assert body["error"] is False
    optimized = requests.get(body["url"], timeout=30).content
    assert len(optimized) < source.stat().st_size
    bad = post(server, "/pdf/optimize", json={"url": url, "profiles": {"JPEGQuality": "best"}})
    assert bad.status_code == 454
