"""The long-lived parts one process needs, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from docmill.config import Settings
from docmill.inputs.fetcher import FetchPolicy
from docmill.jobs.queue import JobQueue
from docmill.jobs.store import JobStore
from docmill.storage.local import LocalStorage


@dataclass
class Services:
    settings: Settings
    store: JobStore
    storage: LocalStorage
    queue: JobQueue
    fetch_policy: FetchPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        settings.resolve_paths()
        return cls(
            settings=settings,
            store=JobStore(settings.data_dir / "jobs.db"),
            storage=LocalStorage(settings.data_dir / "files", settings.signing_secret()),
            queue=JobQueue(settings.data_dir),
            fetch_policy=FetchPolicy(
                allow_private=settings.allow_private_urls,
                max_bytes=settings.max_upload_bytes,
                timeout=settings.fetch_timeout,
            ),
        )
