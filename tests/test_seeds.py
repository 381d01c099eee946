"""The vendor's own client programs, run unchanged against docmill.

Only `BASE_URL`, `API_KEY` and the demo-file URLs are replaced (no internet here: the demo
files are corpus documents on a loopback static server). Windows-style paths such as
`.\\sample.pdf` stay as written: on Linux they are plain file names in the working directory.

Each `check_*` function runs one program against any server (anything with a `url`) and
checks its output; `SEED_CHECKS` lists them, so the cluster tests run the same five.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from tests.conftest import CORPUS, RunningServer, page_count, pdf_text

SEEDS = CORPUS.parent / "seeds"
DEMO = "https://bytescout-com.s3.amazonaws.com/files/demo-files/cloud-api/"

OPTIMIZE_SOURCE = "docling__redp5110_sampled.pdf"
DOCX_SOURCE = "docling__word_sample.docx"
TEXT_SOURCE = "pdfjs__tracemonkey.pdf"
IMAGE_SOURCES = {
    "image1.png": "ocrmypdf__baiona_alpha.png",
    "image2.jpg": "ocrmypdf__baiona_color.jpg",
}
PNG_SOURCE = "ocrmypdf__cardinal.pdf"


def seed_code(prefix: str) -> str:
    """The Python program inside a seed page."""
    page = next(SEEDS.glob(f"{prefix}_*.txt")).read_text()
    return re.search(r"\.py:\*\*\s*```\n(.*?)```", page, re.S).group(1)


def adapt(code: str, server: RunningServer, demo_urls: dict[str, str]) -> str:
    code = re.sub(r'BASE_URL = "https://api\.pdf\.co/v1"', f'BASE_URL = "{server.url}/v1"', code)
    code = re.sub(r'BASE_URL = "https://localhost"', f'BASE_URL = "{server.url}"', code)
    code = re.sub(r'API_KEY = "\*+"', 'API_KEY = "any-key-works-without-DOCMILL_API_KEYS"', code)
    for demo, local in demo_urls.items():
        code = code.replace(DEMO + demo, local)
    assert DEMO not in code, "a demo URL was left unreplaced"
    return code


def run_seed(code: str, workdir: Path) -> str:
    script = workdir / "seed.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stdout.lower(), done.stdout
    return done.stdout


def words(text: str) -> Counter:
    return Counter(re.findall(r"\w+", text.lower()))


def check_optimize_pdf_from_url(server, static_files: str, tmp_path: Path) -> None:
    code = adapt(seed_code("000"), server,
                 {"pdf-optimize/sample.pdf": f"{static_files}/{OPTIMIZE_SOURCE}"})
    output = run_seed(code, tmp_path)
    result = tmp_path / ".\\result.pdf"
    assert "success" in output and result.exists()
    source = CORPUS / OPTIMIZE_SOURCE
    assert page_count(result) == page_count(source)
    assert result.stat().st_size < source.stat().st_size


def check_doc_to_pdf_from_url(server, static_files: str, tmp_path: Path) -> None:
    code = adapt(seed_code("001"), server,
                 {"doc-to-pdf/sample.docx": f"{static_files}/{DOCX_SOURCE}"})
    run_seed(code, tmp_path)
    result = tmp_path / ".\\result.pdf"
    text = words(pdf_text(result))
    expected = words(docx_text(CORPUS / DOCX_SOURCE))
    found = sum(min(count, text[word]) for word, count in expected.items())
    assert found / sum(expected.values()) > 0.9


def check_pdf_to_text_from_uploaded_file(server, static_files: str, tmp_path: Path) -> None:
    (tmp_path / ".\\sample.pdf").write_bytes((CORPUS / TEXT_SOURCE).read_bytes())
    run_seed(adapt(seed_code("002"), server, {}), tmp_path)
    text = (tmp_path / ".\\result.txt").read_text(encoding="utf-8")
    got, expected = words(text), words(pdf_text(CORPUS / TEXT_SOURCE))
    common = sum((got & expected).values())
    assert common / sum(expected.values()) > 0.98
    assert text.count("\f") == page_count(CORPUS / TEXT_SOURCE)


def check_images_to_pdf_from_urls(server, static_files: str, tmp_path: Path) -> None:
    demo = {f"image-to-pdf/{name}": f"{static_files}/{source}"
            for name, source in IMAGE_SOURCES.items()}
    run_seed(adapt(seed_code("003"), server, demo), tmp_path)
    assert page_count(tmp_path / ".\\result.pdf") == 2


def check_pdf_to_png_from_uploaded_file(server, static_files: str, tmp_path: Path) -> None:
    source = CORPUS / PNG_SOURCE
    (tmp_path / ".\\sample.pdf").write_bytes(source.read_bytes())
    run_seed(adapt(seed_code("004"), server, {}), tmp_path)
    document = pdfium.PdfDocument(str(source))
    sizes = [page.get_size() for page in document]
    document.close()
    for number, (width, height) in enumerate(sizes, start=1):
        with Image.open(tmp_path / f"Page{number}.png") as image:
            image.load()
            assert abs(image.width - width * 150 / 72) <= 2
            assert abs(image.height - height * 150 / 72) <= 2
    assert not (tmp_path / f"Page{len(sizes) + 1}.png").exists()


# seed number -> (the endpoint it calls, its check)
SEED_CHECKS = {
    "000": ("/pdf/optimize", check_optimize_pdf_from_url),
    "001": ("/pdf/convert/from/doc", check_doc_to_pdf_from_url),
    "002": ("/pdf/convert/to/text", check_pdf_to_text_from_uploaded_file),
    "003": ("/pdf/convert/from/image", check_images_to_pdf_from_urls),
    "004": ("/pdf/convert/to/png", check_pdf_to_png_from_uploaded_file),
}


def test_optimize_pdf_from_url_async(server, static_files, tmp_path):
    check_optimize_pdf_from_url(server, static_files, tmp_path)


def test_convert_doc_to_pdf_from_url_async(server, static_files, tmp_path):
    check_doc_to_pdf_from_url(server, static_files, tmp_path)


def test_convert_pdf_to_text_from_uploaded_file_async(server, tmp_path):
    check_pdf_to_text_from_uploaded_file(server, "", tmp_path)


def test_convert_images_to_pdf_from_urls_async(server, static_files, tmp_path):
    check_images_to_pdf_from_urls(server, static_files, tmp_path)


def test_convert_pdf_to_image_from_uploaded_file_async(server, tmp_path):
    check_pdf_to_png_from_uploaded_file(server, "", tmp_path)


def docx_text(path: Path) -> str:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        xml = archive.read("word/document.xml").decode("utf-8")
    return " ".join(re.findall(r"<w:t[^>]*>([^<]*)</w:t>", xml))


pytestmark = pytest.mark.timeout(900)
