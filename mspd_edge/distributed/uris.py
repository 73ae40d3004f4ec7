"""Telling URIs from local paths, and showing them (standard library only: the CLI imports it)."""
from urllib.parse import urlsplit


def is_uri(text):
    """Whether ``text`` names object storage or another file system by URI (``scheme://``)."""
    return "://" in str(text)


def display_uri(uri):
    """``uri`` without its query and credentials (``scheme://user:secret@bucket/key?...``)."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
