"""Settings: every `DOCMILL_*` environment variable, mirrored by a CLI flag of the same name."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigurationError(Exception):
    """A setting that cannot work; the message says how to fix it."""


def _env_bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    """Everything docmill can be told. Field `x_y` is `DOCMILL_X_Y` and `--x-y`."""

    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on"})
    port: int = field(default=8080, metadata={"help": "port to listen on"})
    data_dir: Path = field(default=Path("data"), metadata={"help": "jobs, queue and files"})
    queue: str = field(
        default="",
        metadata={"help": "job queue and table: empty = SQLite in the data dir; "
                  "redis://host:6379/0 = a Redis shared by every node"},
    )
    storage: str = field(
        default="",
        metadata={"help": "files: empty = the data dir; "
                  "s3://bucket[/prefix]?endpoint=URL&region=R = an S3-compatible bucket"},
    )
    workers: int = field(default=2, metadata={"help": "worker processes started by serve"})
    worker_nice: int = field(
        default=5,
        metadata={"help": "niceness added to workers (and their engines), so that the API "
                  "answers promptly while they are busy; 0 = none"},
    )
    api_keys: str = field(default="", metadata={"help": "comma-separated keys; empty: no key"})
    allow_private_urls: bool = field(
        default=False, metadata={"help": "let the URL fetcher reach loopback/private addresses"}
    )
    public_url: str = field(
        default="", metadata={"help": "base URL for links in responses (default: from request)"}
    )
    secret: str = field(default="", metadata={"help": "URL-signing key (default: generated)"})
    sync_timeout: float = field(
        default=300.0, metadata={"help": "seconds a sync request waits before answering 445"}
    )
    max_upload_mb: int = field(default=512, metadata={"help": "largest upload or input, MiB"})
    fetch_timeout: float = field(default=60.0, metadata={"help": "seconds to fetch an input URL"})
    max_queue: int = field(default=10000, metadata={"help": "queued jobs before 429"})
    max_pages: int = field(default=10000, metadata={"help": "most pages one job may work on"})
    lease_seconds: float = field(
        default=30.0, metadata={"help": "a running job whose worker is silent this long is retried"}
    )
    job_timeout: float = field(default=1800.0, metadata={"help": "longest run of one job, s"})
    libreoffice_timeout: float = field(
        default=120.0, metadata={"help": "kill a LibreOffice conversion after this many s"}
    )
    libreoffice_max_conversions: int = field(
        default=200, metadata={"help": "restart a LibreOffice instance after N conversions"}
    )
    log_level: str = field(default="info", metadata={"help": "debug, info, warning, error"})

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        settings = cls()
        for item in fields(cls):
            raw = environ.get(f"DOCMILL_{item.name.upper()}")
            if raw is not None:
                settings.set(item.name, raw)
        return settings

    def set(self, name: str, raw: object) -> None:
        """Set a field from text (env or CLI), converting to the field's type."""
        current = getattr(self, name)
        if isinstance(current, bool):
            value: object = raw if isinstance(raw, bool) else _env_bool(str(raw))
        elif isinstance(current, Path):
            value = Path(str(raw))
        else:
            value = type(current)(raw)
        setattr(self, name, value)

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for processes docmill starts."""
        env = {}
        for item in fields(self):
            value = getattr(self, item.name)
            text = ("1" if value else "0") if isinstance(value, bool) else str(value)
            env[f"DOCMILL_{item.name.upper()}"] = text
        return env

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    def resolve_paths(self) -> None:
        self.data_dir = self.data_dir.resolve()
        for sub in ("files", "tmp", "libreoffice"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)

    def signing_secret(self) -> bytes:
        """The URL-signing key: DOCMILL_SECRET, or one generated once per data directory."""
        if self.secret:
            return self.secret.encode()
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            tmp = key_file.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(os.urandom(32).hex())
            # link() fails if another process won the race: then everyone reads its key.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, key_file)
            tmp.unlink(missing_ok=True)
        return key_file.read_text().strip().encode()
