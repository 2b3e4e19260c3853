from __future__ import annotations

from slugify import slugify as _slugify

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


def slugify(text: str, max_length: int = 180) -> str:
    """ASCII, lowercase, hyphen-separated; never empty."""
    return _slugify(text, max_length=max_length, word_boundary=True) or "item"
