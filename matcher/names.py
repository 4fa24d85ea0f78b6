"""Place names as a twinning signal: namesakes and shared name words.

Towns twin with their namesakes (Boston GB and Boston US, Worcester, Toledo, Mérida, Valencia ES and VE, Kelso)
and with places that share a distinctive word of their name (Neu-Ulm and New Ulm, Braunfels and New Braunfels,
Lucca and Lucca Sicula, the Belvedere and Sant'Ambrogio towns of Italy): 117 of the 13,594 partnerships of the
towns network (0.9 %), many of them between small places, where the partnership graph says least. A name is a
place's own attribute, not part of the network, so these features carry over to places and country pairs without
known partnerships.

:class:`NameIndex` turns the gazetteer's names into two sparse incidence matrices and, from one sparse product
each, two sparse ``(n, n)`` pair matrices (built once; a batch of ``m`` sources slices its ``(m, n)`` rows), never
a scan over all pairs:

* ``same_name``: the two places' names are equal once folded (accents, case and punctuation dropped);
* ``shared_words``: the sum, over the distinctive words the two names share (words of three letters or more,
  not a stop word, used by at most :data:`MAX_WORD_PLACES` places), of the word's inverse frequency
  ``log(n / places with the word)``; the pairs with the same full name are left out (``same_name`` has them).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

#: a word used by more places than this is no sign of a link (and would make the products dense)
MAX_WORD_PLACES = 1000

#: words that begin or join place names in the languages of the gazetteer and say nothing of a namesake
STOP_WORDS = frozenset(
    [
        "saint",
        "sankt",
        "sainte",
        "sant",
        "san",
        "santa",
        "santo",
        "sao",
        "st",
        "ste",
        "bad",
        "nord",
        "sur",
        "upon",
        "city",
        "new",
        "north",
        "south",
        "east",
        "west",
        "port",
        "mont",
        "am",
        "an",
        "der",
        "den",
        "dem",
        "die",
        "de",
        "la",
        "le",
        "les",
        "du",
        "des",
        "del",
        "della",
        "delle",
        "dei",
        "di",
        "da",
        "do",
        "dos",
        "das",
        "el",
        "los",
        "las",
        "y",
        "e",
        "et",
        "und",
        "and",
        "im",
        "in",
        "on",
        "the",
        "of",
        "to",
        "ob",
        "bei",
        "al",
        "ul",
        "ad",
        "vila",
        "villa",
        "villa",
        "nova",
        "novo",
        "nuevo",
        "nueva",
        "neu",
        "nieuw",
        "novi",
        "novy",
        "nowy",
        "stara",
        "stary",
        "old",
        "mount",
        "lake",
        "fort",
        "grand",
        "great",
        "little",
        "upper",
        "lower",
        "big",
        "small",
        "gross",
        "klein",
        "alt",
    ]
)

_NOT_LETTER = re.compile(r"[^a-z0-9]+")


def _ascii_lower(name: str) -> str:
    return unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode().lower()


def fold_name(name: str) -> str:
    """``name`` without accents, case, spaces or punctuation: ``Béja`` and ``Beja`` fold alike."""
    return _NOT_LETTER.sub("", _ascii_lower(name))


def name_words(name: str) -> list[str]:
    """The words of ``name`` that can mark a namesake (folded, three letters or more, not a stop word)."""
    return [w for w in _NOT_LETTER.split(_ascii_lower(name)) if len(w) >= 3 and w not in STOP_WORDS]


class NameIndex:
    """The gazetteer's names as two ``(n, n)`` pair matrices (~1 s and ~40 MB over 170,391 places: 0.17 M namesake
    entries, 3.5 M shared-word ones), from the incidences of folded full names shared by two places or more and of
    distinctive words weighted by inverse frequency (see the module doc); a batch of sources slices its rows."""

    def __init__(self, names: Sequence[str] | np.ndarray) -> None:
        n = len(names)
        self.n = n
        folded = [fold_name(s) for s in names]
        _, code, count = np.unique(np.asarray(folded, dtype=object), return_inverse=True, return_counts=True)
        code = code.reshape(-1)
        shared = (count[code] >= 2) & (np.asarray([len(s) for s in folded]) > 0)
        rows = np.flatnonzero(shared)
        _, cols = np.unique(code[rows], return_inverse=True)
        full = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols.reshape(-1))), shape=(n, int(cols.max(initial=-1)) + 1)
        )
        word_rows: list[int] = []
        word_list: list[str] = []
        for i, s in enumerate(names):
            for w in set(name_words(s)):
                word_rows.append(i)
                word_list.append(w)
        _, wcode, wcount = np.unique(np.asarray(word_list, dtype=object), return_inverse=True, return_counts=True)
        wcode = wcode.reshape(-1)
        keep = (wcount[wcode] >= 2) & (wcount[wcode] <= MAX_WORD_PLACES)
        _, wcols = np.unique(wcode[keep], return_inverse=True)
        places = wcount[wcode[keep]]
        words = sp.csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (np.asarray(word_rows)[keep], wcols.reshape(-1))),
            shape=(n, int(wcols.max(initial=-1)) + 1),
        )
        idf = np.zeros(words.shape[1], np.float32)
        idf[wcols.reshape(-1)] = np.log(n / places).astype(np.float32)
        self._same = sp.csr_matrix(full @ full.T)
        shared = sp.csr_matrix(words.multiply(idf[None, :]).tocsr() @ words.T)
        if self._same.nnz:
            shared = sp.csr_matrix(shared - shared.multiply(self._same))
        shared.eliminate_zeros()
        self._shared = shared

    def same_name(self, rows: np.ndarray) -> sp.csr_matrix:
        """``(m, n)``: 1 where the candidate's folded name equals the source's (0 for a virtual source, row -1)."""
        return self._rows(self._same, rows)

    def shared_words(self, rows: np.ndarray) -> sp.csr_matrix:
        """``(m, n)``: summed inverse frequency of the distinctive words two names share, 0 where the full names
        are the same (``same_name`` has those pairs)."""
        return self._rows(self._shared, rows)

    @staticmethod
    def _rows(mat: sp.csr_matrix, rows: np.ndarray) -> sp.csr_matrix:
        rows = np.asarray(rows, dtype=np.int64)
        out = mat[np.clip(rows, 0, None)]
        if (rows < 0).any():  # a virtual source has no name in the gazetteer
            keep = sp.diags((rows >= 0).astype(np.float32))
            out = sp.csr_matrix(keep @ out)
        return sp.csr_matrix(out)
