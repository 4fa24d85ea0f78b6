"""Twinning's service: the web layer (``api.web``), the domain (``api.domain``), the data layer (``api.data``) and
the command line (``api.cli``), sharing ``api.config`` (settings), ``api.errors`` (domain errors) and
``api.schemas`` (the API's shapes).

``create_app`` is imported lazily, so the command line can start without loading the web stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.web.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from api.web.app import create_app

        return create_app
    raise AttributeError(name)
