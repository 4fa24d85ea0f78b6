"""Seeded random conferences for tests and benchmarks, shaped like a US-China sister-cities conference.

Delegations are US (English) or Chinese (Chinese); a few of each are bilingual. Each attends most slots (some arrive
late or leave early). Matcher scores come from latent interest vectors, higher across countries than within. Each
delegation marks 5-12 others (mostly in the other country, more likely the better the score): about one in seven a
``must_meet``, the rest ``would_like``, and sometimes one ``no_thanks``; a must-meet is returned as a must-meet
with probability ``p_mutual`` (the pre-conference e-mails), giving mutual must-meets. A few delegations are
existing sister cities that ask each other for a follow-up (``would_like`` both ways, occasionally ``must_meet``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import MUST_MEET, NO_THANKS, NO_WISH, WOULD_LIKE, Instance


@dataclass(frozen=True)
class Scale:
    delegations: int
    slots: int
    tables: int
    interpreters: int  # zh-en interpreters on duty per slot
    share_chinese: float = 0.4
    bilingual: float = 0.1  # share of delegations of each side that also speak the other language


SCALES: dict[str, Scale] = {
    "real": Scale(delegations=50, slots=8, tables=15, interpreters=6),
    "5x": Scale(delegations=250, slots=16, tables=60, interpreters=24),
}


def random_instance(scale: Scale | str = "real", seed: int = 0, p_mutual: float = 0.4) -> Instance:
    sc = SCALES[scale] if isinstance(scale, str) else scale
    rng = np.random.default_rng(seed)
    n, s_count = sc.delegations, sc.slots
    n_cn = round(n * sc.share_chinese)
    chinese = np.zeros(n, bool)
    chinese[rng.permutation(n)[:n_cn]] = True
    bilingual = rng.random(n) < sc.bilingual
    languages = tuple(
        frozenset({"zh"} if c else {"en"}) | (frozenset({"en"} if c else {"zh"}) if bi else frozenset())
        for c, bi in zip(chinese, bilingual, strict=True)
    )

    # availability: most attend all slots; some arrive late / leave early; a few random gaps
    available = rng.random((n, s_count)) > 0.05
    late = rng.random(n) < 0.15
    available[late, : max(1, s_count // 4)] = False
    early = rng.random(n) < 0.15
    available[early, s_count - max(1, s_count // 4) :] = False
    available[~available.any(axis=1), 0] = True

    # matcher scores: latent interests; cross-country pairs score higher
    latent = rng.normal(size=(n, 6))
    latent /= np.linalg.norm(latent, axis=1, keepdims=True)
    cos = latent @ latent.T
    cross = chinese[:, None] != chinese[None, :]
    scores = np.clip(np.where(cross, 0.45, 0.2) + np.where(cross, 0.35, 0.2) * cos + rng.normal(0, 0.08, (n, n)), 0, 1)
    scores = np.triu(scores, 1)
    scores = scores + scores.T

    wishes = np.zeros((n, n), np.int8)
    marks = rng.integers(5, 13, size=n)
    for i in range(n):
        weight = np.exp(4 * scores[i]) * np.where(cross[i], 4.0, 1.0)
        weight[i] = 0
        targets = rng.choice(n, size=marks[i], replace=False, p=weight / weight.sum())
        kinds = np.where(rng.random(marks[i]) < 0.15, MUST_MEET, WOULD_LIKE)
        wishes[i, targets] = kinds
        if rng.random() < 0.3:  # one no_thanks, on a low-scoring delegation not otherwise marked
            low = np.flatnonzero((wishes[i] == NO_WISH) & (np.arange(n) != i))
            if low.size:
                wishes[i, low[np.argmin(scores[i, low])]] = NO_THANKS
    # pre-conference contact: a must-meet is often returned
    ia, ja = np.nonzero((wishes == MUST_MEET) & (wishes.T != NO_THANKS) & (wishes.T != MUST_MEET))
    back = rng.random(ia.size) < p_mutual
    wishes[ja[back], ia[back]] = MUST_MEET

    # existing sister cities ask for a follow-up
    us, cn = rng.permutation(np.flatnonzero(~chinese)), rng.permutation(np.flatnonzero(chinese))
    for a, b in list(zip(us, cn, strict=False))[: max(2, n // 20)]:
        kind = MUST_MEET if rng.random() < 0.3 else WOULD_LIKE
        wishes[a, b] = wishes[b, a] = kind
        scores[a, b] = scores[b, a] = max(scores[a, b], 0.7)
    np.fill_diagonal(wishes, NO_WISH)

    tables = np.full(s_count, sc.tables)
    interp = {"zh": np.full(s_count, sc.interpreters)}
    names = tuple(f"{'CN' if c else 'US'}{i:03d}" for i, c in enumerate(chinese))
    return Instance(tables, languages, available, wishes, scores, interp, "en", names)
