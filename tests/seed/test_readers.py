"""The file readers of seed/readers.py (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from seed.readers import read_cities, read_countries, read_country_pair_totals, read_pairs


def test_shipped_files() -> None:
    cities = read_cities()
    assert len(cities) == 34006 and cities.geonameid.is_unique
    assert (cities.country == "NA").sum() > 0  # Namibia is not a missing value
    assert cities.admin1.map(type).eq(str).all()
    pairs = read_pairs()
    assert list(pairs.columns) == ["geonameid_a", "geonameid_b"] and len(pairs) == 8666
    assert pairs.dtypes.eq("int64").all()
    assert set(pairs.geonameid_a) | set(pairs.geonameid_b) <= set(cities.geonameid)
    countries = read_countries()
    assert len(countries) == 252 and "NA" in set(countries.code)


def test_read_pairs_rejects_bad_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    missing.write_text("geonameid_a,x\n1,2\n")
    with pytest.raises(ValueError, match="lacks the column"):
        read_pairs(missing)
    words = tmp_path / "words.csv"
    words.write_text("geonameid_a,geonameid_b,note\n1,two,x\n")
    with pytest.raises(ValueError, match="must be integers"):
        read_pairs(words)
    ok = tmp_path / "ok.csv"
    ok.write_text("geonameid_b,geonameid_a,note\n2,1,x\n")
    assert read_pairs(ok).to_dict("records") == [{"geonameid_a": 1, "geonameid_b": 2}]


def test_country_pair_totals_are_shipped_and_checked(tmp_path: Path) -> None:
    # the one known total: China-US, as counted for the 5th China-US Sister Cities Conference (context of the data)
    assert read_country_pair_totals() == {"CN-US": 284}
    ok = tmp_path / "ok.csv"
    ok.write_text("country_a,country_b,total,source\nus,CN,284,x\nFR,DE,2300,y\n")
    assert read_country_pair_totals(ok) == {"CN-US": 284, "DE-FR": 2300}  # codes upper-cased and sorted
    for body, problem in (
        ("country_a,total\nCN,3\n", "lacks the column"),
        ("country_a,country_b,total\nCN,US,many\n", "line 2"),
        ("country_a,country_b,total\nCN,CN,3\n", "line 2"),
        ("country_a,country_b,total\nCN,US,3\nChina,US,3\n", "line 3"),
    ):
        bad = tmp_path / "bad.csv"
        bad.write_text(body)
        with pytest.raises(ValueError, match=problem):
            read_country_pair_totals(bad)
