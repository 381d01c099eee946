"""The machine a run came from: cores, CPU, memory, load, and versions of everything timed."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

# docmill's runtime dependencies whose speed the figures depend on.
PACKAGES = ("pypdfium2", "pikepdf", "pillow", "img2pdf", "numpy", "fastapi", "uvicorn", "huey",
            "pydantic")
# Reference tools and how each tells its version (some print it on stderr).
TOOLS = {
    "pdftotext": ["pdftotext", "-v"],
    "pdftoppm": ["pdftoppm", "-v"],
    "gs": ["gs", "--version"],
    "qpdf": ["qpdf", "--version"],
    "img2pdf": ["img2pdf", "--version"],
    "soffice": ["soffice", "--version"],
}


def describe() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_at_start": [round(value, 2) for value in os.getloadavg()],
        "docmill_commit": _docmill_commit(),
        "packages": {name: _package_version(name) for name in PACKAGES},
        "tools": {name: _tool_version(command) for name, command in TOOLS.items()},
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo_kib(key: str) -> int:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _tool_version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (done.stdout or done.stderr).strip()
    match = re.search(r"\d+(\.\d+)+", text)
    return match.group(0) if match else text.splitlines()[0] if text else "unknown"


def _docmill_commit() -> str:
    """The commit the measured code is at, marked when docmill/ has uncommitted changes."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "docmill"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if not head:
        return "unknown"
    return f"{head} (docmill/ has uncommitted changes)" if dirty else f"{head} (docmill/ clean)"
