"""Every failure docmill reports, each carrying its PDF.co error code.

One place maps failures to codes: an op raises `PasswordError`, the API answers 441.
"""

from __future__ import annotations

import errno


class DocmillError(Exception):
    """A failure with a PDF.co-style code (also the HTTP status) and a message for the user."""

    status: int = 500
    default_message = "Internal error."

    def __init__(self, message: str | None = None, status: int | None = None) -> None:
        self.message = message or self.default_message
        if status is not None:
            self.status = status
        super().__init__(self.message)

    def envelope(self) -> dict:
        return {"error": True, "status": self.status, "message": self.message}


class BadRequestError(DocmillError):
    status = 400
    default_message = "Bad request."


class InputURLError(DocmillError):
    """The input URL could not be fetched (unreachable, 4xx/5xx, timeout)."""

    status = 400
    default_message = "Could not fetch the input file from its URL."


class AuthError(DocmillError):
    status = 401
    default_message = "Missing or invalid API key: send a valid key in the x-api-key header."


class ForbiddenURLError(DocmillError):
    """The input URL points somewhere the fetcher may not go (private address, bad scheme)."""

    status = 403
    default_message = "Access to this URL is not allowed."


class NotFoundError(DocmillError):
    status = 404
    default_message = "Not found."


class TimeoutError_(DocmillError):
    status = 408
    default_message = "The operation timed out."


class TooLargeError(DocmillError):
    status = 413
    default_message = "The input is too large."


class UnsupportedTypeError(DocmillError):
    status = 415
    default_message = "Unsupported file type."


class TooManyRequestsError(DocmillError):
    status = 429
    default_message = "Too many requests: the job queue is full, retry later."


class PasswordError(DocmillError):
    status = 441
    default_message = "The PDF is encrypted: the password is missing or wrong."


class DamagedFileError(DocmillError):
    status = 442
    default_message = "The file is damaged or is not of the expected type."


class PermissionsError(DocmillError):
    status = 443
    default_message = "The document's permissions forbid this operation."


class ProfilesError(DocmillError):
    status = 444
    default_message = "Could not parse 'profiles': send a JSON object."


class SyncTimeoutError(DocmillError):
    status = 445
    default_message = (
        "The job took too long to run synchronously; it goes on in the background. "
        "Use async=true and poll /job/check with the jobId."
    )


class MissingInputError(DocmillError):
    status = 446
    default_message = "Missing input: set 'url' to the file to process."


class PageRangeError(DocmillError):
    status = 450
    default_message = "Invalid page range."


class InvalidURLError(DocmillError):
    status = 452
    default_message = "Invalid URL."


class InvalidParametersError(DocmillError):
    status = 454
    default_message = "Invalid parameters."


class EngineError(DocmillError):
    """An external engine (LibreOffice, Tesseract...) failed on a document."""

    status = 500
    default_message = "The conversion engine failed."


class ServiceUnavailableError(DocmillError):
    """A shared backend (the Redis job store or queue) cannot be reached right now."""

    status = 503
    default_message = "The job store is unreachable; retry in a moment."


class StorageError(DocmillError):
    status = 507
    default_message = "Could not store the result: the data directory is full or not writable."


_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


def disk_error(error: BaseException) -> StorageError | None:
    """The 507 a full or unwritable disk deserves, or None for other failures."""
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
        return StorageError(
            f"The server could not write its files ({error.strerror}): the data directory "
            "is full or not writable. Nothing was stored; retry once space is freed."
        )
    return None
