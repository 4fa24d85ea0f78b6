"""Namesakes and shared name words as pair features (matcher.names)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from matcher.graph import CityIndex
from matcher.names import MAX_WORD_PLACES, NameIndex, fold_name, name_words

NAMES = [
    "Boston",  # 0
    "Boston",  # 1: namesake of 0
    "Béja",  # 2
    "Beja",  # 3: namesake of 2 once accents are folded
    "Neu-Ulm",  # 4
    "New Ulm",  # 5: shares the word "ulm" with 4 ("neu" and "new" are stop words)
    "Lucca Sicula",  # 6
    "Lucca",  # 7: shares "lucca" with 6
    "Saint-Louis",  # 8
    "San Marino",  # 9: "saint" and "san" say nothing of a namesake
    "Sankt Louis",  # 10: shares "louis" with 8
    "Ulmen",  # 11: a longer word is another word
]


def test_fold_name_drops_accents_case_and_punctuation() -> None:
    assert fold_name("Béja") == fold_name("beja") == "beja"
    assert fold_name("Saint-Louis") == fold_name("saint louis") == "saintlouis"
    assert fold_name("Köln") == "koln"


def test_name_words_keep_only_distinctive_words() -> None:
    assert name_words("Neu-Ulm") == ["ulm"]
    assert name_words("Santiago de Compostela") == ["santiago", "compostela"]
    assert name_words("Le Mans") == ["mans"]
    assert name_words("St. Ives") == ["ives"]


def test_same_name_marks_exactly_the_folded_namesakes() -> None:
    ni = NameIndex(NAMES)
    same = ni.same_name(np.array([0, 2, 4])).toarray()
    assert np.flatnonzero(same[0]).tolist() == [0, 1]
    assert np.flatnonzero(same[1]).tolist() == [2, 3]
    assert not same[2].any()  # Neu-Ulm has no namesake (a name of one place gets no column at all)


def test_shared_words_weigh_rare_words_and_leave_namesakes_to_same_name() -> None:
    ni = NameIndex(NAMES)
    shared = ni.shared_words(np.array([4, 6, 8, 0])).toarray()
    n = len(NAMES)
    assert np.flatnonzero(shared[0]).tolist() == [4, 5]  # not Ulmen
    assert shared[0, 5] == np.float32(np.log(n / 2))  # "ulm" is used by two places
    assert np.flatnonzero(shared[1]).tolist() == [6, 7]
    assert np.flatnonzero(shared[2]).tolist() == [8, 10]  # not San Marino
    assert not shared[3].any()  # Boston's twin is a namesake: counted by same_name only


def test_frequent_words_are_no_sign() -> None:
    names = ["Springfield"] * (MAX_WORD_PLACES + 1) + ["Springfield Lake", "Other"]
    ni = NameIndex(names)
    assert ni.shared_words(np.array([MAX_WORD_PLACES + 1])).nnz == 0
    assert ni.same_name(np.array([0])).nnz == MAX_WORD_PLACES + 1


def test_a_virtual_source_has_no_namesake() -> None:
    ni = NameIndex(NAMES)
    assert ni.same_name(np.array([-1, 0])).toarray()[0].sum() == 0
    assert ni.shared_words(np.array([-1, 4])).toarray()[0].sum() == 0
    assert ni.shared_words(np.array([-1, 4])).toarray()[1].sum() > 0


def test_city_index_carries_names_and_rebuilds_the_index_after_pickling() -> None:
    import pickle

    frame = pd.DataFrame(
        {
            "geonameid": np.arange(len(NAMES)) + 1,
            "name": NAMES,
            "country": ["GB", "US"] * (len(NAMES) // 2),
            "admin1": "01",
            "latitude": 0.0,
            "longitude": 0.0,
            "population": 1000,
        }
    )
    ix = CityIndex.from_frame(frame)
    assert ix.name_index().same_name(np.array([0])).nnz == 2
    again = pickle.loads(pickle.dumps(ix))
    assert "_name_index" not in again.__dict__
    assert again.name_index().same_name(np.array([0])).nnz == 2
    nameless = CityIndex.from_frame(frame.drop(columns="name"))
    assert nameless.names is None and nameless.name_index().same_name(np.array([0])).nnz == 0
