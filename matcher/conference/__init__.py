"""Conference mode (issue 11): one-to-one meetings between delegations in short slots, pure numpy/scipy.

Build an ``Instance``; ``solve`` it (MILP through HiGHS, lexicographic: mutual must-meets first, then value),
compare with ``greedy``, ``reschedule`` after a change, ``check`` any schedule.

Meeting value (``Weights``): ``score * 1.0 + 0.3 per side that would like it + 0.6 per side that must meet``.
A pair nobody wished for is considered only with a score of at least 0.5 (an empty chair is better than a weak
unrequested meeting: it is a break, and the table or interpreter may serve a wished pair). Mutual must-meets come
first lexicographically: their number is maximised before anything else.
"""

from .check import assign_tables, check, explain_unmet, mutual_must_pairs
from .instances import SCALES, Scale, random_instance
from .model import (
    CANCELLED,
    CAPACITY,
    MUST_MEET,
    NO_COMMON_SLOT,
    NO_INTERPRETER,
    NO_TABLE,
    NO_THANKS,
    NO_WISH,
    WOULD_LIKE,
    Instance,
    Meeting,
    Schedule,
    Unmet,
    Weights,
)
from .solve import greedy, keepable, reschedule, solve

__all__ = [
    "CANCELLED",
    "CAPACITY",
    "MUST_MEET",
    "NO_COMMON_SLOT",
    "NO_INTERPRETER",
    "NO_TABLE",
    "NO_THANKS",
    "NO_WISH",
    "SCALES",
    "WOULD_LIKE",
    "Instance",
    "Meeting",
    "Scale",
    "Schedule",
    "Unmet",
    "Weights",
    "assign_tables",
    "check",
    "explain_unmet",
    "greedy",
    "keepable",
    "mutual_must_pairs",
    "random_instance",
    "reschedule",
    "solve",
]
