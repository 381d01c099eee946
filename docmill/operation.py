"""How an operation is declared once: its paths, parameters, function and result shape.

Each module in `docmill/ops/` builds one `Operation` and calls `register`. The HTTP routes,
the OpenAPI schema and the CLI are generated from the registry; nothing else lists ops.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from docmill.profiles import parse_profiles


class CommonParams(BaseModel):
    """Parameters every operation accepts (see docs of PDF.co's common parameters)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    url: str = Field(
        "", description="Input: a URL docmill issued, an http(s) URL, or a comma list."
    )
    name: str = Field("", description="Output file name; sanitised, the right extension is kept.")
    async_: bool = Field(False, alias="async", description="Answer at once with a jobId.")
    password: str = Field("", description="Password of an encrypted input PDF.")
    pages: str = Field("", description="0-based page ranges: '0,2-5,7-', '!0' = last page.")
    inline: bool = Field(False, description="Return the result content in 'body' too.")
    expiration: int = Field(60, ge=1, le=60 * 24 * 30, description="Minutes output links live.")
    profiles: dict[str, Any] = Field(
        default_factory=dict, description="Extra options, a JSON object (lenient parser)."
    )
    callback: str = Field("", description="Webhook URL POSTed with the result of an async job.")
    httpusername: str = Field("", description="Basic-auth user name for fetching 'url'.")
    httppassword: str = Field("", description="Basic-auth password for fetching 'url'.")

    @field_validator("profiles", mode="before")
    @classmethod
    def _lenient_profiles(cls, value: Any) -> dict[str, Any]:
        return parse_profiles(value)

    @field_validator("pages", "password", "name", "url", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value


class ResultShape(enum.Enum):
    ONE_FILE = "one_file"  # `url` to one file
    MANY_FILES = "many_files"  # sync: `urls`; async: `url` to a JSON list of URLs


@dataclass
class OpResult:
    """What an op produced: output files in order, and facts about the work."""

    files: list[Path]
    page_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# An op function: input files (in the order of `url`), validated params, a scratch
# directory to write outputs into. It raises `DocmillError` subclasses on bad input.
OpFunction = Callable[[list[Path], Any, Path], OpResult]


@dataclass(frozen=True)
class Operation:
    name: str  # short id, e.g. "pdf_to_text"; used by the CLI and job records
    paths: tuple[str, ...]  # PDF.co paths without the /v1 prefix
    params: type[CommonParams]
    run: OpFunction
    result: ResultShape
    extension: str  # extension of each output file
    summary: str
    inline_text: bool = False  # `inline=true` puts the output's text in `body`
    engines: tuple[str, ...] = ()  # engines the op needs, e.g. ("libreoffice",)


_REGISTRY: dict[str, Operation] = {}


def register(operation: Operation) -> Operation:
    if operation.name in _REGISTRY:
        raise ValueError(f"operation {operation.name!r} registered twice")
    _REGISTRY[operation.name] = operation
    return operation


def operations() -> dict[str, Operation]:
    """Every registered operation, importing the op modules on first use."""
    import docmill.ops  # noqa: F401  (imports every op module, which registers itself)

    return dict(_REGISTRY)


def get_operation(name: str) -> Operation:
    return operations()[name]
