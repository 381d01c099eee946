"""The long-lived parts one process needs, built once from the settings.

The settings choose the backends: SQLite and the data directory (embedded), or Redis and
an S3 bucket shared by every node of a cluster. Nothing else in docmill asks which.
"""

from __future__ import annotations

from dataclasses import dataclass

from docmill.config import Settings
from docmill.inputs.fetcher import FetchPolicy
from docmill.jobs.queue import JobQueue
from docmill.jobs.store import JobStore, open_job_store
from docmill.storage import Storage, open_storage


@dataclass
class Services:
    settings: Settings
    store: JobStore
    storage: Storage
    queue: JobQueue
    fetch_policy: FetchPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        settings.resolve_paths()
        return cls(
            settings=settings,
            store=open_job_store(settings),
            storage=open_storage(settings),
            queue=JobQueue(settings.data_dir, settings.queue),
            fetch_policy=FetchPolicy(
                allow_private=settings.allow_private_urls,
                max_bytes=settings.max_upload_bytes,
                timeout=settings.fetch_timeout,
            ),
        )
