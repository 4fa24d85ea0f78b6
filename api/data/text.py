"""Text folding shared by the seed loader and the search queries."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Lower-case ASCII fold used for accent-insensitive search (``Lavāsān`` → ``lavasan``)."""
    norm = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in norm if not unicodedata.combining(ch)).lower()
