"""The HTTP layer: lenient PDF.co request parsing, routes generated from the op registry."""

from docmill.api.app import create_app

__all__ = ["create_app"]
