"""Finished answers kept in memory by a process (the suggestions and the city search services), validated by the
data version (:mod:`api.data.version`): one mechanism for every cached answer."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar


class Answer:
    """A finished suggestions answer: its document (:attr:`body`, JSON-ready), the data version it was computed at
    (None: not to be cached) and the time (epoch seconds) it lapses.

    The web layer encodes it once (:meth:`encode`); from then on only the bytes are kept (a cached answer of k=10
    took ~47 KB as a document, ~13 KB as bytes) and :attr:`body` decodes them for the console and the command
    line. A body is shared by the requests it serves: never change it."""

    __slots__ = ("_body", "data_version", "encoded", "until")

    def __init__(self, body: dict[str, Any], data_version: int | None = None, until: float = float("inf")) -> None:
        self._body: dict[str, Any] | None = body
        self.data_version = data_version
        self.until = until
        self.encoded: bytes | None = None

    @property
    def body(self) -> dict[str, Any]:
        body = self._body
        if body is not None:
            return body
        assert self.encoded is not None
        decoded: dict[str, Any] = json.loads(self.encoded)
        return decoded

    def encode(self, encoder: Callable[[dict[str, Any]], bytes]) -> bytes:
        """The answer's bytes, made by ``encoder`` on first use."""
        encoded = self.encoded
        if encoded is None:
            body = self.body
            encoded = self.encoded = encoder(body)
            self._body = None
        return encoded


class Kept(Protocol):
    """What an :class:`AnswerCache` keeps: anything with the data version it was made at and its lapse time."""

    @property
    def data_version(self) -> int | None: ...

    @property
    def until(self) -> float: ...


K = TypeVar("K", bound=Kept)


class AnswerCache(Generic[K]):
    """A process's finished answers, at most ``size`` (least recently used out first; 0 keeps none), each valid
    while the data version it was computed at is the newest (and until its own time): the caller reads the version
    (:class:`api.data.version.VersionReader`, one read per request) before anything the answer is made of, and
    passes it to :meth:`get`. The first newer version seen drops every older answer; an answer computed at an older
    version than one already seen is not kept."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._answers: OrderedDict[Hashable, K] = OrderedDict()
        self._newest = -1  # the newest data version seen: answers of older versions are gone
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __contains__(self, key: Hashable) -> bool:
        """Whether an answer is kept under ``key``, whatever its version (no hit or miss is counted)."""
        with self._lock:
            return key in self._answers

    def get(self, key: Hashable, data_version: int) -> K | None:
        with self._lock:
            self._see(data_version)
            answer = self._answers.get(key)
            if answer is None or answer.data_version != data_version or time.time() >= answer.until:
                self.misses += 1
                return None
            self._answers.move_to_end(key)
            self.hits += 1
            return answer

    def put(self, key: Hashable, answer: K) -> None:
        if self.size <= 0:
            return
        with self._lock:
            assert answer.data_version is not None
            if answer.data_version < self._newest:  # computed before a newer write was seen: not kept
                return
            self._see(answer.data_version)  # a caller may put without a get first (the edge cache does)
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)

    def _see(self, data_version: int) -> None:
        """The first newer version seen drops every older answer (the lock is held)."""
        if data_version > self._newest:
            self._answers.clear()
            self._newest = data_version


class CachedAnswers:
    """A service that keeps its answers in an :class:`AnswerCache` (``_answers``): its hit and miss counts."""

    _answers: AnswerCache[Answer]

    @property
    def hits(self) -> int:
        return self._answers.hits

    @property
    def misses(self) -> int:
        return self._answers.misses
