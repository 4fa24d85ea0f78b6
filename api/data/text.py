"""Text folding shared by the seed loader and the search queries.

A name and a query meet when their folded keys meet: NFKD, combining marks stripped, a few letters that do not
decompose spelled out (``ł`` → ``l``, ``ø`` → ``o``, ``æ`` → ``ae`` ...), case-folded (``ß`` → ``ss``), hyphens
as spaces and runs of spaces collapsed. Names with German umlauts get a second key spelled the German way
(``München`` → ``munchen`` and ``muenchen``), so ``Munchen``, ``Muenchen`` and ``München`` all find Munich. CJK and
other scripts without case or accents fold to themselves.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

# Letters NFKD leaves alone, as people type them on a Latin keyboard.
_SPELL_OUT = str.maketrans(
    {
        "ł": "l",
        "Ł": "l",
        "ø": "o",
        "Ø": "o",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "ħ": "h",
        "Ħ": "h",
        "ı": "i",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "þ": "th",
        "Þ": "th",
        "‐": " ",
        "‑": " ",
        "–": " ",
        "-": " ",
    }
)
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_UMLAUTS = frozenset("äöüÄÖÜ")
MAX_KEY = 200  # keys (and the indexed names) are cut to this many characters


def _strip_table() -> dict[int, str | None]:
    """One ``str.translate`` table: combining marks (canonical combining class > 0) dropped, the letters of
    :data:`_SPELL_OUT` spelled out."""
    table: dict[int, str | None] = {cp: None for cp in range(0x300, 0x20000) if unicodedata.combining(chr(cp))}
    table.update(_SPELL_OUT)
    return table


_STRIP: dict[int, str | None] = {}


def fold(text: str) -> str:
    """The search key of a name or query (``Lavāsān`` → ``lavasan``, ``Saint-Étienne`` → ``saint etienne``)."""
    if text.isascii():  # most names: no marks to strip, nothing to spell out but hyphens
        return " ".join(text.replace("-", " ").lower().split())[:MAX_KEY]
    if not _STRIP:
        _STRIP.update(_strip_table())
    stripped = unicodedata.normalize("NFKD", text).translate(_STRIP)
    return " ".join(stripped.casefold().split())[:MAX_KEY]


def name_keys(name: str) -> tuple[str, ...]:
    """Every key under which ``name`` is found: its fold, and for umlauts also the German spelling's fold."""
    key = fold(name)
    if name.isascii() or _UMLAUTS.isdisjoint(name):
        return (key,) if key else ()
    german = fold(name.translate(_GERMAN))
    return (key, german) if german != key else (key,)


def word_suffixes(key: str) -> list[str]:
    """The key from each later word on (``new york city`` → ``york city``, ``city``): word-prefix search."""
    words = key.split(" ")
    return [" ".join(words[i:]) for i in range(1, len(words)) if len(words[i]) > 1]


# ---------------------------------------------------------------- scripts (ISO 15924 codes)
_SCRIPT_PREFIXES = (
    ("CJK", "Hani"),
    ("HIRAGANA", "Jpan"),
    ("KATAKANA", "Jpan"),
    ("HANGUL", "Hang"),
    ("LATIN", "Latn"),
    ("CYRILLIC", "Cyrl"),
    ("GREEK", "Grek"),
    ("ARABIC", "Arab"),
    ("HEBREW", "Hebr"),
    ("DEVANAGARI", "Deva"),
    ("THAI", "Thai"),
    ("ARMENIAN", "Armn"),
    ("GEORGIAN", "Geor"),
    ("BENGALI", "Beng"),
    ("TAMIL", "Taml"),
    ("TELUGU", "Telu"),
    ("GURMUKHI", "Guru"),
    ("GUJARATI", "Gujr"),
    ("KANNADA", "Knda"),
    ("MALAYALAM", "Mlym"),
    ("ETHIOPIC", "Ethi"),
    ("KHMER", "Khmr"),
    ("LAO", "Laoo"),
    ("MYANMAR", "Mymr"),
    ("SINHALA", "Sinh"),
    ("TIBETAN", "Tibt"),
    ("MONGOLIAN", "Mong"),
)

# Primary language subtags (Accept-Language) → the script their speakers write place names in.
LANGUAGE_SCRIPTS = {
    "zh": "Hani",
    "ja": "Jpan",
    "ko": "Hang",
    "ru": "Cyrl",
    "uk": "Cyrl",
    "be": "Cyrl",
    "bg": "Cyrl",
    "sr": "Cyrl",
    "mk": "Cyrl",
    "kk": "Cyrl",
    "ky": "Cyrl",
    "mn": "Cyrl",
    "tg": "Cyrl",
    "el": "Grek",
    "ar": "Arab",
    "fa": "Arab",
    "ur": "Arab",
    "ps": "Arab",
    "he": "Hebr",
    "yi": "Hebr",
    "hi": "Deva",
    "mr": "Deva",
    "ne": "Deva",
    "th": "Thai",
    "hy": "Armn",
    "ka": "Geor",
    "bn": "Beng",
    "ta": "Taml",
    "te": "Telu",
    "pa": "Guru",
    "gu": "Gujr",
    "kn": "Knda",
    "ml": "Mlym",
    "am": "Ethi",
    "km": "Khmr",
    "lo": "Laoo",
    "my": "Mymr",
    "si": "Sinh",
    "bo": "Tibt",
}


@lru_cache(maxsize=4096)
def _char_script(ch: str) -> str:
    name = unicodedata.name(ch, "")
    for prefix, code in _SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return code
    return ""


def script_of(text: str) -> str:
    """The ISO 15924 code of the first letter's script (``苏州`` → ``Hani``, ``Köln`` → ``Latn``; kana → ``Jpan``),
    or ``""`` when there is no letter (ASCII text counts as Latin)."""
    if text.isascii():
        return "Latn"
    code = ""
    for ch in text:
        if ch.isalpha():
            code = _char_script(ch)
            if code != "Hani":
                return code
            # Han followed by kana is Japanese: look on for kana, else it stays Han.
            for rest in text:
                if _char_script(rest) == "Jpan":
                    return "Jpan"
            return code
    return code


def script_for_languages(accept_language: str | None) -> str | None:
    """The script of the first language in an ``Accept-Language`` header that is not written in Latin letters
    (``zh-CN,zh;q=0.9`` → ``Hani``); ``None`` when the first language is written in Latin or there is none.

    Weights are respected (highest first, ties in the given order)."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag.strip().lower()))
    if not ranked:
        return None
    tag = min(ranked)[2]
    primary = tag.split("-")[0]
    return LANGUAGE_SCRIPTS.get(primary)


def _is_code(name: str) -> bool:
    """GeoNames lists airport codes among alternate names (``SZV``, ``CGN``): not names people search by."""
    return 3 <= len(name) <= 4 and name.isascii() and name.isalpha() and name.isupper()


def name_entries(city_id: int, names: list[str], *, main: str | None = None) -> list[tuple[int, str, str, int, str]]:
    """The search rows of one city: ``(city_id, key, name, kind, script)``, one per distinct key.

    ``main`` is the GeoNames name (kind 0, and its later words as kind 2), ``names`` the alternate names (kind 1).
    A key reached by several names keeps the first: the main name, then alternate names in the given order."""
    seen: dict[str, tuple[int, str, str, int, str]] = {}
    words: list[str] = []
    if main:
        name = main[:MAX_KEY]
        script = script_of(name)
        for key in name_keys(name):
            seen.setdefault(key, (city_id, key, name, 0, script))
            words.extend(word_suffixes(key))
    for alt in names:
        if _is_code(alt):
            continue
        name = alt[:MAX_KEY]
        keys = name_keys(name)
        if keys:
            script = script_of(name)
            for key in keys:
                if key not in seen:
                    seen[key] = (city_id, key, name, 1, script)
    if main:
        name = main[:MAX_KEY]
        for key in words:
            if key not in seen:
                seen[key] = (city_id, key, name, 2, script_of(name))
    return sorted(seen.values(), key=lambda row: row[1])
