"""Peak memory of a worker extracting or rendering the 600+-page document.

Each op runs in a fresh Python process, as a worker runs it (`python -m bench.memory OP
FILE`), which reports its own peak RSS (VmHWM) and the largest peak of the page helpers it
started (RUSAGE_CHILDREN, once they are stopped). The reference tools' peaks come from
`/usr/bin/time`; a peak read by this process itself would count the memory of the
benchmark process it forked from.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import corpus
from bench.context import Context, log
from bench.corpus import CorpusFile
from bench.ops_png import pdftoppm_command
from bench.ops_text import pdftotext_command
from bench.rows import Row, at_most

LIMIT_MB = 500
QUICK_PAGES = 100
REFERENCE_PNG_PAGES = 10  # pdftoppm holds one page at a time; more pages cost only time


def run(ctx: Context) -> list[Row]:
    doc = corpus.largest_pdf()
    pages = f"0-{QUICK_PAGES - 1}" if ctx.quick else ""
    count = QUICK_PAGES if ctx.quick else doc.pages
    rows = []
    for op, what in (("pdf_to_text", "PDF→text"), ("pdf_to_png", "PDF→PNG")):
        log(f".. memory: {op} on {count} pages")
        probe = probe_op(op, doc, pages)
        reference = _reference_peak(ctx, op, doc)
        peak = max(probe["self_mb"], probe["children_mb"])
        note = f"worker process {probe['self_mb']:.0f} MB"
        if probe["children_mb"]:
            note += (f", largest page helper {probe['children_mb']:.0f} MB "
                     "(helper processes run beside the worker)")
        note += f"; took {probe['seconds']:.1f} s in a fresh process"
        rows.append(Row(
            section="memory", level="memory",
            name=f"{what} {count}-page document, peak RSS", unit="MB", docmill=peak,
            reference=reference, tool=_reference_name(op),
            target=at_most(7, "value", LIMIT_MB, f"< {LIMIT_MB} MB"), runs="1", note=note,
            details=probe,
        ))
    return rows


def probe_op(op: str, doc: CorpusFile, pages: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", op, str(doc.path), doc.password, pages],
        capture_output=True, text=True, timeout=900, check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _reference_name(op: str) -> str:
    if op == "pdf_to_text":
        return "pdftotext -layout"
    return f"pdftoppm, {REFERENCE_PNG_PAGES} pages"


def _reference_peak(ctx: Context, op: str, doc: CorpusFile) -> float | None:
    if shutil.which("time") is None and not Path("/usr/bin/time").exists():
        return None
    out = ctx.fresh_dir("memory-reference")
    if op == "pdf_to_text":
        command = pdftotext_command(doc.path, doc.password, out / "out.txt")
    else:
        command = pdftoppm_command(doc.path, doc.password, out / "page", 1, REFERENCE_PNG_PAGES)
    report = out / "time.txt"
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), *map(str, command)],
                   capture_output=True, timeout=900, check=True)
    return int(report.read_text().split()[-1]) / 1024


# -- the probe, in its own process ----------------------------------------------------------


def _vm_hwm_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _probe(op_name: str, path: str, password: str, pages: str) -> dict[str, Any]:
    from docmill import spread
    from docmill.operation import operations

    op = operations()[op_name]
    params = op.params.model_validate({"password": password, "pages": pages})
    with tempfile.TemporaryDirectory(prefix="docmill-bench-memory-") as out:
        started = time.perf_counter()
        result = op.run([Path(path)], params, Path(out))
        seconds = time.perf_counter() - started
    spread.stop()  # a helper's peak is counted once it has ended and been waited for
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"op": op_name, "pages": result.page_count, "seconds": round(seconds, 2),
            "self_mb": round(_vm_hwm_mb(), 1), "children_mb": round(children, 1)}


if __name__ == "__main__":
    print(json.dumps(_probe(*sys.argv[1:5])))
