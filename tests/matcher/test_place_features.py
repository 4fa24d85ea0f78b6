"""The place-attribute pair features (namesakes, shared name words, nearby places) in a fitted model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matcher.likelihood import PartnershipLikelihood
from matcher.pair_features import STAGE1, STAGE1_FEATURES
from matcher.place_features import near_domestic, near_foreign, same_name, shared_name_words
from tests.matcher.test_likelihood import COUNTRIES, PER_COUNTRY, SMALL, _synthetic

PLACE_FEATURES = ("same_name", "shared_name_words", "near_foreign", "near_domestic", "log_neighbourhood_ties")


def _world() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The synthetic world of test_likelihood, plus planted namesake pairs (town r of DE and of JP share a name and
    twin) and border pairs (town r of FR sits 5-30 km from town r of US and twins with it)."""
    cities, pairs = _synthetic()
    rng = np.random.default_rng(1)
    gid = {(c, r): 1000 * (i + 1) + r for i, c in enumerate(COUNTRIES) for r in range(PER_COUNTRY)}
    extra = []
    for r in range(20, PER_COUNTRY):
        de, jp, fr, us = gid["DE", r], gid["JP", r], gid["FR", r], gid["US", r]
        cities.loc[cities.geonameid.isin([de, jp]), "name"] = f"Altenberg{r}"
        lat, lon = cities.loc[cities.geonameid == fr, ["latitude", "longitude"]].to_numpy()[0]
        cities.loc[cities.geonameid == us, ["latitude", "longitude"]] = [lat + rng.uniform(0.05, 0.25), lon]
        extra += [(min(de, jp), max(de, jp)), (min(fr, us), max(fr, us))]
    pairs = pd.concat([pairs, pd.DataFrame(extra, columns=["geonameid_a", "geonameid_b"])], ignore_index=True)
    return cities, pairs.drop_duplicates().sample(frac=1.0, random_state=3).reset_index(drop=True)


@pytest.fixture(scope="module")
def model() -> PartnershipLikelihood:
    cities, pairs = _world()
    return PartnershipLikelihood(**SMALL, random_state=0).fit(cities, pairs)


def test_the_place_features_are_registered() -> None:
    assert set(PLACE_FEATURES) <= set(STAGE1_FEATURES)


def test_the_matrix_form_equals_the_pairwise_form_where_the_features_are_set(model: PartnershipLikelihood) -> None:
    fz = model.featurizer_
    rows = model.index_.positions([1020, 2021, 5022, 6023])  # a namesake (DE), two border towns (FR, US), JP
    src = fz.sources(rows)
    n = model.index_.n
    qi, cand = np.repeat(np.arange(len(rows)), n), np.tile(np.arange(n), len(rows))
    frame = fz.stage1_frame(src, qi, cand)
    from matcher.sources import Batch

    batch = Batch(fz, src)
    for f in STAGE1:
        if f.name in PLACE_FEATURES:
            assert f.source is not None
            dense = f.source(batch).toarray()  # type: ignore[union-attr]
            assert np.allclose(dense.ravel(), frame[f.name].to_numpy(), atol=1e-6), f.name
    assert frame["same_name"].sum() >= 4  # DE20 and JP20 see each other (and themselves)
    assert frame["near_foreign"].gt(0).sum() >= 2  # FR21 and US21 are neighbours across a border
    # a source's area includes the source itself: its own partners make ties between its area and theirs
    assert frame["log_neighbourhood_ties"].gt(0).sum() >= 2
    full = fz.stage1_matrix(src, model.stage1_weights_, model.stage1_intercept_)
    pairwise = frame @ model.stage1_coefficients() + model.stage1_intercept_
    assert np.allclose(full, pairwise.to_numpy().reshape(len(rows), n), rtol=1e-5, atol=1e-4)


def test_the_model_learns_that_namesakes_and_neighbours_twin(model: PartnershipLikelihood) -> None:
    w = model.stage1_weights_
    assert w["same_name"] > 0
    assert w["near_foreign"] > 0


def test_a_virtual_city_gets_its_neighbours_but_no_namesakes(model: PartnershipLikelihood) -> None:
    fz = model.featurizer_
    fr = model.index_.positions([2030])[0]
    src = fz.virtual_source(model.index_.country_code("DE"), 5000.0, model.index_.lat[fr], model.index_.lon[fr])
    from matcher.sources import Batch

    batch = Batch(fz, src)
    assert same_name(batch).nnz == 0 and shared_name_words(batch).nnz == 0
    assert near_foreign(batch)[0, fr] == pytest.approx(np.log1p(100.0), rel=1e-5)  # FR30 is at the very point


def test_the_near_features_split_the_neighbours_by_country(model: PartnershipLikelihood) -> None:
    fz = model.featurizer_
    ix = model.index_
    rows = np.arange(0, ix.n, 7)
    from matcher.sources import Batch

    batch = Batch(fz, fz.sources(rows))
    foreign, domestic = near_foreign(batch).toarray(), near_domestic(batch).toarray()  # in this order, then again
    whole = ix.near_index().closeness(ix.lat[rows], ix.lon[rows]).toarray()
    assert np.array_equal(foreign + domestic, whole)
    same = ix.country[None, :] == ix.country[rows][:, None]
    assert not foreign[same].any() and not domestic[~same].any()
    assert np.array_equal(near_domestic(Batch(fz, fz.sources(rows))).toarray(), domestic)  # domestic first
