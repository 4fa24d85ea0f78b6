"""The profile/gazetteer matcher, without any server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from matcher import CityTable, CountryTable, Filters, ProfileData, TwinningMatcher
from matcher.rank import top_k

COUNTRIES = CountryTable.from_records(
    [
        {"code": "CN", "continent": "AS", "languages": "zh-CN"},
        {"code": "US", "continent": "NA", "languages": "en-US,es-US"},
        {"code": "FR", "continent": "EU", "languages": "fr-FR"},
        {"code": "DE", "continent": "EU", "languages": "de"},
    ]
)


def make_cities(n_per_country: int = 10, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    gid = 100
    for cc, (lat, lon) in {"CN": (31, 120), "US": (38, -90), "FR": (47, 2), "DE": (51, 10)}.items():
        for i in range(n_per_country):
            gid += 1
            rows.append(
                {
                    "geonameid": gid,
                    "name": f"{cc}-{i}",
                    "country": cc,
                    "latitude": lat + rng.normal(0, 2),
                    "longitude": lon + rng.normal(0, 2),
                    "population": int(rng.integers(20_000, 5_000_000)),
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def cities() -> pd.DataFrame:
    return make_cities()


def fit(cities: pd.DataFrame, profiles: dict[int, ProfileData], pairs: list[tuple[int, int]] = ()) -> TwinningMatcher:
    table = CityTable.build(cities, profiles, COUNTRIES)
    rows = np.array([(table.row(a), table.row(b)) for a, b in pairs], np.int64).reshape(-1, 2)
    return TwinningMatcher().fit(table, rows)


def test_scores_and_components_are_in_unit_interval(cities: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    keys = ["education", "tourism", "climate_environment", "music", "trade_investment"]
    profiles = {
        int(g): ProfileData(
            offers={k: float(rng.random()) for k in keys[:3]}, seeks={k: float(rng.random()) for k in keys[2:]}
        )
        for g in cities.geonameid[::2]
    }
    m = fit(cities, profiles)
    comps = m.components_batch(np.arange(len(cities)))
    for name, values in comps.items():
        finite = values[~np.isnan(values)]
        assert finite.size > 0, name
        assert finite.min() >= 0.0 and finite.max() <= 1.0, name
    scores = m.score_rows(np.arange(len(cities)))
    assert scores.shape == (len(cities), len(cities))
    assert np.isfinite(scores).all() and scores.min() >= 0 and scores.max() <= 1


def test_reciprocity_is_symmetric_and_needs_both_directions(cities: pd.DataFrame) -> None:
    a, b, c = (int(g) for g in cities.geonameid[:3])
    profiles = {
        a: ProfileData(offers={"education": 1.0}, seeks={"tourism": 1.0}),
        b: ProfileData(offers={"tourism": 1.0}, seeks={"education": 1.0}),  # perfect two-way fit with a
        c: ProfileData(offers={"tourism": 1.0}, seeks={"music": 1.0}),  # good for a only
    }
    m = fit(cities, profiles)
    t = m.table_
    comps = m.components_batch([t.row(a), t.row(b), t.row(c)])
    rec = comps["reciprocity"]
    assert rec[0, t.row(b)] == pytest.approx(rec[1, t.row(a)])
    assert rec[0, t.row(c)] == pytest.approx(rec[2, t.row(a)])
    assert rec[0, t.row(b)] == pytest.approx(1.0)
    assert rec[0, t.row(c)] == pytest.approx(0.0)  # one-sided: a gets tourism, c gets nothing it seeks
    assert comps["complementarity"][0, t.row(c)] == pytest.approx(0.5)


def test_planted_ideal_partner_ranks_first(cities: pd.DataFrame) -> None:
    rng = np.random.default_rng(3)
    sectors = ["education", "youth", "culture_arts", "music", "tourism", "health", "sports"]
    profiles = {
        int(g): ProfileData(
            offers={s: float(rng.random()) * 0.4 for s in rng.choice(sectors, 2, replace=False)},
            seeks={s: float(rng.random()) * 0.4 for s in rng.choice(sectors, 2, replace=False)},
        )
        for g in cities.geonameid
    }
    me, ideal = int(cities.geonameid[0]), int(cities.geonameid[25])
    profiles[me] = ProfileData(
        offers={"climate_environment": 1.0, "green_cities": 0.8}, seeks={"science_research": 1.0}
    )
    profiles[ideal] = ProfileData(
        offers={"science_research": 1.0}, seeks={"climate_environment": 1.0, "green_cities": 0.8}
    )
    m = fit(cities, profiles)
    out = m.suggest(m.table_.row(me), k=5)
    assert out[0].city_id == ideal
    reasons = [f.reason for f in out[0].sectors]
    assert any("offers science & research" in r for r in reasons), reasons


def test_excludes_self_and_existing_partners(cities: pd.DataFrame) -> None:
    ids = [int(g) for g in cities.geonameid]
    m = fit(cities, {}, pairs=[(ids[0], ids[1]), (ids[2], ids[0])])
    out = m.suggest(m.table_.row(ids[0]), k=len(ids))
    got = {s.city_id for s in out}
    assert ids[0] not in got and ids[1] not in got and ids[2] not in got
    assert len(got) == len(ids) - 3


def test_filters_are_respected(cities: pd.DataFrame) -> None:
    ids = [int(g) for g in cities.geonameid]
    profiles = {ids[12]: ProfileData(offers={"music": 0.9}), ids[31]: ProfileData(seeks={"music": 0.5})}
    m = fit(cities, profiles)
    row = m.table_.row(ids[0])
    t = m.table_
    only_fr = m.suggest(row, k=8, filters=Filters(countries=frozenset({"FR"})))
    assert len(only_fr) == 8 and all(t.country[s.row] == "FR" for s in only_fr)
    big = m.suggest(row, k=50, filters=Filters(min_population=1_000_000, max_population=3_000_000))
    assert big and all(1_000_000 <= t.population[s.row] <= 3_000_000 for s in big)
    near = m.suggest(row, k=50, filters=Filters(max_distance_km=800))
    assert near and all(s.distance_km <= 800 for s in near)
    assert all(t.country[s.row] == "CN" for s in near)  # the other countries are thousands of km away
    music = m.suggest(row, k=50, filters=Filters(sectors=frozenset({"music"})))
    assert {s.city_id for s in music} == {ids[12], ids[31]}


def test_deterministic(cities: pd.DataFrame) -> None:
    profiles = {int(cities.geonameid[0]): ProfileData(offers={"education": 0.5}, seeks={"tourism": 0.7})}
    first = fit(cities, profiles).suggest(0, k=10)
    second = fit(cities, profiles).suggest(0, k=10)
    assert [(s.city_id, s.score) for s in first] == [(s.city_id, s.score) for s in second]


def test_diversity_caps_one_country_to_a_third_of_top_ten(cities: pd.DataFrame) -> None:
    m = fit(cities, {})
    out = m.suggest(0, k=10)
    counts = pd.Series([m.table_.country[s.row] for s in out]).value_counts()
    assert len(out) == 10 and counts.max() <= 3
    unfiltered_scores = m.score_rows([0])[0]
    # Without diversity the same-language, same-band Chinese cities would dominate: the cap did something.
    mask = m.candidate_mask(0)
    plain = top_k(unfiltered_scores, 10, mask)
    assert (m.table_.country[plain] == "CN").sum() > 3


def test_preferences_penalise_unwanted_countries(cities: pd.DataFrame) -> None:
    me = int(cities.geonameid[0])
    m = fit(cities, {me: ProfileData(pref_countries=frozenset({"US"}))})
    out = m.suggest(m.table_.row(me), k=10)
    assert sum(m.table_.country[s.row] == "US" for s in out) >= 3
    pref = m.components_batch([m.table_.row(me)])["preference"][0]
    assert pref[m.table_.row(int(cities.geonameid[15]))] == pytest.approx(1.0)  # a US city
    assert pref[m.table_.row(int(cities.geonameid[25]))] == pytest.approx(0.5)  # a French city


def test_cities_without_profiles_get_explained_suggestions(cities: pd.DataFrame) -> None:
    m = fit(cities, {})
    out = m.suggest(3, k=10)
    assert len(out) == 10
    for s in out:
        assert set(s.components) >= {"size", "context", "preference"}
        assert "interest" not in s.components
        assert s.sectors and all(f.reason for f in s.sectors)


def test_suggest_many_matches_suggest(cities: pd.DataFrame) -> None:
    profiles = {int(cities.geonameid[5]): ProfileData(offers={"education": 0.5}, seeks={"tourism": 0.7})}
    m = fit(cities, profiles)
    many = m.suggest_many([0, 5, 17], k=7, batch=2)
    for row, got in zip([0, 5, 17], many, strict=True):
        one = m.suggest(row, k=7)
        assert [s.city_id for s in got] == [s.city_id for s in one]
        assert [s.score for s in got] == [s.score for s in one]


def test_unknown_weight_name_is_refused(cities: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown components"):
        TwinningMatcher(weights={"charisma": 1.0}).fit(CityTable.build(cities, {}, COUNTRIES))


class FakeLikelihood:
    """A stand-in with the likelihood interface that prefers one planted city (a test double of the model
    interface, not of any server)."""

    def __init__(self, geonameids: np.ndarray, favourite: int) -> None:
        self.geonameids_ = geonameids
        self.favourite = favourite

    def score_sources(self, geonameids: list[int]) -> np.ndarray:
        out = np.full((len(geonameids), len(self.geonameids_)), 0.1)
        out[:, list(self.geonameids_).index(self.favourite)] = 0.99
        return out

    def score_new(self, country: str, population: int, latitude: float, longitude: float) -> np.ndarray:
        return self.score_sources([0])[0]


def test_likelihood_component_is_blended_and_reported(cities: pd.DataFrame) -> None:
    gids = cities.geonameid.to_numpy()
    fav = int(gids[33])
    table = CityTable.build(cities, {}, COUNTRIES)
    m = TwinningMatcher(likelihood=FakeLikelihood(gids, fav)).fit(table)
    out = m.suggest(0, k=3)
    assert out[0].city_id == fav
    # log scale: 1 + log10(p) / 8
    assert out[0].components["likelihood"] == pytest.approx(1 + np.log10(0.99) / 8, abs=1e-4)  # rounded to 4 places
    assert out[1].components["likelihood"] == pytest.approx(0.875)
    # Without profiles the learned component stands for the gazetteer: the score is the likelihood itself.
    assert out[1].score == pytest.approx(0.875, abs=1e-4)
    assert {"size", "context"} <= set(out[1].components)


def test_exclusions_and_per_query_diversity(cities: pd.DataFrame) -> None:
    m = fit(cities, {})
    first = m.suggest(0, k=5)
    banned = frozenset({first[0].city_id, first[1].city_id})
    again = m.suggest(0, k=5, filters=Filters(exclude_ids=banned))
    assert not banned & {s.city_id for s in again} and len(again) == 5
    free = m.suggest(0, k=10, filters=Filters(max_country_share=1.0))
    mask = m.candidate_mask(0)
    assert [s.row for s in free] == top_k(m.score_rows([0])[0], 10, mask).tolist()


def test_served_score_keeps_the_likelihood_order_for_unprofiled_cities() -> None:
    """The blend must not reorder what the learned model ranks (evaluation scores the served score)."""
    cities = make_cities(30, seed=7)
    gids = cities.geonameid.to_numpy()

    class Spread:
        geonameids_ = gids

        def score_sources(self, ids: list[int]) -> np.ndarray:
            rng = np.random.default_rng(int(ids[0]))
            return 10.0 ** rng.uniform(-14, -0.5, size=(len(ids), len(gids)))  # many far below the 1e-8 floor

        def score_new(self, country: str, population: int, latitude: float, longitude: float) -> np.ndarray:
            return self.score_sources([0])[0]

    lik = Spread()
    m = TwinningMatcher(likelihood=lik).fit(CityTable.build(cities, {}, COUNTRIES))
    for g in gids[:5]:
        served = m.score_rows([m.table_.row(int(g))])[0]
        raw = lik.score_sources([int(g)])[0]
        assert (np.argsort(-served, kind="stable") == np.argsort(-raw, kind="stable")).all()


def _profiles_with_preferences() -> dict[int, ProfileData]:
    return {
        101: ProfileData(offers={"education": 0.9, "tourism": 0.4}, seeks={"maritime_ports": 0.8}),
        112: ProfileData(offers={"maritime_ports": 1.0}, seeks={"education": 0.5}, pref_countries=frozenset({"CN"})),
        125: ProfileData(seeks={"culture_arts": 0.7}, pref_min_population=1_000_000, seeking_partners=False),
        131: ProfileData(offers={"culture_arts": 0.6}, pref_max_population=200_000, pref_languages=frozenset({"de"})),
    }


@pytest.mark.parametrize("with_likelihood", [False, True])
def test_fast_scores_equal_the_blend_of_all_components(cities: pd.DataFrame, with_likelihood: bool) -> None:
    """score_rows (profile block + sparse preferences) is bit-for-bit blend(components_batch(...))."""
    gids = cities.geonameid.to_numpy()
    table = CityTable.build(cities, _profiles_with_preferences(), COUNTRIES)
    lik = FakeLikelihood(gids, int(gids[33])) if with_likelihood else None
    m = TwinningMatcher(likelihood=lik).fit(table, np.array([[0, 1], [11, 30]]))
    rows = np.arange(len(table))
    assert np.array_equal(m.score_rows(rows), m.blend(m.components_batch(rows)))
    for row in (0, 11, 24, 30, 5):
        full = m.components_batch([row])
        picked = np.array([3, 11, 24, 30, 39])
        at = m.components_at(row, picked)
        assert set(at) == set(full)
        for name, v in at.items():
            assert np.array_equal(v, full[name][:, picked], equal_nan=True), name
    for row in range(6):
        one = m.suggest(row, k=5)
        assert [s.row for s in one] == [s.row for s in m.suggest_many([row], k=5)[0]]


def test_with_profiles_scores_as_a_matcher_fitted_from_scratch(cities: pd.DataFrame) -> None:
    """A profile edit applied in place (``with_profiles``) gives the scores of a whole new fit, removals included,
    and leaves the original matcher as it was."""
    ids = [int(g) for g in cities.geonameid]
    before = {
        ids[0]: ProfileData(offers={"education": 1.0}, seeks={"tourism": 0.8}, pref_countries=frozenset({"US"})),
        ids[1]: ProfileData(offers={"tourism": 0.7}, seeks={"education": 0.9}, seeking_partners=False),
        ids[12]: ProfileData(offers={"tourism": 0.6}, seeks={"education": 0.5}, pref_min_population=1_000_000),
    }
    pairs = [(ids[0], ids[11]), (ids[2], ids[25])]
    old = fit(cities, before, pairs)
    old_scores = old.score_rows(np.arange(len(ids)))
    updates: dict[int, ProfileData | None] = {
        ids[1]: None,  # removed
        ids[12]: ProfileData(offers={"education": 0.9}, seeks={"tourism": 1.0}, pref_languages=frozenset({"fr"})),
        ids[30]: ProfileData(offers={"education": 0.5}, seeks={"tourism": 0.5}, pref_countries=frozenset({"CN"})),
        999_999: ProfileData(offers={"education": 0.5}),  # not a city of the table: skipped
    }
    after = {
        **{k: v for k, v in before.items() if k != ids[1]},
        **{k: v for k, v in updates.items() if v and k < 999_999},
    }
    fresh = fit(cities, after, pairs)
    updated = old.with_profiles(updates)
    rows = np.arange(len(ids))
    np.testing.assert_allclose(updated.score_rows(rows), fresh.score_rows(rows))
    assert [s.city_id for s in updated.suggest(0, 10)] == [s.city_id for s in fresh.suggest(0, 10)]
    assert not updated.table_.has_profile[1] and updated.table_.has_profile[30]
    np.testing.assert_allclose(old.score_rows(rows), old_scores)  # the original is untouched
    assert old.table_.has_profile[1] and not old.table_.has_profile[30]


def test_served_list_spreads_across_the_countries_a_city_seeks(cities: pd.DataFrame) -> None:
    """Kunshan seeks US partners: the country cap must not push its top 5 away from the United States."""
    me = int(cities.geonameid[0])
    m = fit(cities, {me: ProfileData(pref_countries=frozenset({"US"}))})
    row = m.table_.row(me)
    out = m.suggest(row, k=5)
    countries = [m.table_.country[s.row] for s in out]
    assert countries.count("US") >= 4, countries
    # within the US the list spreads over sizes and areas: at most ceil(5/3) = 2 per size band or area
    codes = m.spread_[[s.row for s in out if m.table_.country[s.row] == "US"]]
    for col in range(codes.shape[1]):
        assert np.bincount(codes[:, col] - codes[:, col].min()).max() <= 2
    assert [[s.row for s in x] for x in m.suggest_many([row], k=5)] == [[s.row for s in out]]
    # without preferences the cap still holds: at most floor(4/3) = 1 from each of the 4 countries
    plain = fit(cities, {})
    got = [plain.table_.country[s.row] for s in plain.suggest(row, k=4)]
    assert sorted(got) == ["CN", "DE", "FR", "US"]


def test_served_list_leaves_out_the_home_country_where_its_places_rarely_twin_at_home(cities: pd.DataFrame) -> None:
    """French, US or Chinese towns twin abroad: a French town is not served its neighbours (issue 8's towns)."""
    gid = cities.geonameid.to_numpy()  # CN 0-9, US 10-19, FR 20-29, DE 30-39
    abroad = [(int(gid[i]), int(gid[10 + i])) for i in range(10)] + [(int(gid[i]), int(gid[20 + i])) for i in range(10)]
    at_home = [(int(gid[30 + i]), int(gid[30 + (i + 1) % 10])) for i in range(10)]
    m = fit(cities, {}, abroad + at_home)
    assert m.rare_home_.tolist() == [code == "CN" for code in m.table_.country_codes]
    source = m.table_.row(int(gid[1]))
    plain = top_k(m.score_rows([source])[0], 10, m.candidate_mask(source))
    assert (m.table_.country[plain] == "CN").sum() > 0  # the scores alone would serve Chinese cities
    # k = 9: three from each other country (a tenth would have to be filled from China: too few others left)
    out = m.suggest(source, k=9)
    assert len(out) == 9 and not any(m.table_.country[s.row] == "CN" for s in out)
    assert [[s.row for s in x] for x in m.suggest_many([source], k=9)] == [[s.row for s in out]]
    # a German city (Germany twins at home too) keeps the usual cap of a third
    de_out = m.suggest(m.table_.row(int(gid[35])), k=10)
    assert 1 <= sum(m.table_.country[s.row] == "DE" for s in de_out) <= 3
    # a Chinese city that seeks Chinese partners gets them, and so does one that filters by China
    seeks = fit(cities, {int(gid[1]): ProfileData(pref_countries=frozenset({"CN"}))}, abroad + at_home)
    assert any(seeks.table_.country[s.row] == "CN" for s in seeks.suggest(source, k=10))
    only = m.suggest(source, k=5, filters=Filters(countries=frozenset({"CN"})))
    assert len(only) == 5 and all(m.table_.country[s.row] == "CN" for s in only)
