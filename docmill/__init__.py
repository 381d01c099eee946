"""docmill: a self-hosted document-processing API server that speaks the PDF.co Web API."""

__version__ = "0.1.0"
