"""API shapes (pydantic): what clients send and what they get back. Tables live in :mod:`api.models`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

from api.config import MAX_PAGE_SIZE
from matcher.sectors import SECTOR_KEYS

SectorKey = Literal[SECTOR_KEYS]  # type: ignore[valid-type]
Weight = Annotated[float, Field(ge=0.0, le=1.0)]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, upper case")]


def split_commas(v: Any) -> Any:
    """Query lists may come as ``?x=a,b`` or ``?x=a&x=b`` (or both); an empty item (``?x=``) stays, to be refused."""
    if isinstance(v, str):
        return v.split(",")
    if isinstance(v, list):
        return [p for item in v for p in str(item).split(",")]
    return v


# What the columns hold: ids of cities (and everything keyed by them) are BIGINT; match ids, versions and
# populations are INTEGER. Inputs are range-checked against them here, so no value reaches PostgreSQL out of range.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
CityId = Annotated[int, Field(ge=0, le=INT64_MAX, description="a city's id (a gazetteer city's is its geonameid)")]
RowId = Annotated[int, Field(ge=0, le=INT32_MAX)]
Population = Annotated[int, Field(ge=0, le=INT32_MAX)]
MAX_ID_LIST = 5_000  # ids in one request body (larger batches: use a scope)


_SCHEMAS: dict[Any, dict[str, Any]] = {}


class Strict(BaseModel):
    """Query and path parameters: unknown names are refused (values arrive as strings, so types are lax).

    flask-openapi3 asks a query model for its JSON schema on every request (to tell list parameters apart); the
    schema of a class never changes, so it is built once per class and arguments (about 0.6 ms a request saved on
    ``GET …/suggestions``). The dict is shared: read it, never change it (flask-openapi3 only reads it)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        key = (cls, args, tuple(sorted(kwargs.items())))
        schema = _SCHEMAS.get(key)
        if schema is None:
            schema = _SCHEMAS[key] = super().model_json_schema(*args, **kwargs)
        return schema


class Body(BaseModel):
    """JSON bodies: unknown names are refused and types are strict (``false`` is no number, ``1e30`` no integer)."""

    model_config = ConfigDict(extra="forbid", strict=True)


PageNumber = Annotated[int, Field(ge=1, le=100_000)]
PerPage = Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE, description=f"page size, at most {MAX_PAGE_SIZE}")]


class Page(Strict):
    """Paging of every list endpoint; subclasses may change the default page size."""

    page: PageNumber = 1
    per_page: PerPage = 50


# ---------------------------------------------------------------- cities
class CityBase(Body):
    name: str = Field(min_length=1, max_length=200)
    country: CountryCode
    admin1: str = Field(default="", max_length=20)
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    population: int = Field(default=0, ge=0, le=100_000_000)
    timezone: str = Field(default="", max_length=60)


class CityCreate(CityBase):
    """A custom city outside the gazetteer (gazetteer cities come from the seed)."""


class CityUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    admin1: str | None = Field(default=None, max_length=20)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    population: int | None = Field(default=None, ge=0, le=100_000_000)
    timezone: str | None = Field(default=None, max_length=60)


class CityPublic(BaseModel):
    id: int
    geonameid: int | None
    name: str
    country: str
    country_name: str | None = None
    admin1: str
    latitude: float
    longitude: float
    population: int
    timezone: str
    is_custom: bool
    has_profile: bool = False
    # In a name search (GET /cities?q=): the name the query matched when it is not ``name`` (``Köln`` for Koln,
    # ``苏州``), the name in the user's script when the city has one (from a non-Latin query, or Accept-Language),
    # and the two together for display (``Suzhou (苏州)``; just ``name`` when there is nothing to add).
    matched_name: str | None = None
    local_name: str | None = None
    display_name: str | None = None


class CityList(BaseModel):
    data: list[CityPublic]
    count: int
    page: int
    per_page: int


class CityQuery(Page):
    q: str | None = Field(default=None, max_length=100, description="name search, accent-insensitive")
    country: CountryCode | None = None
    geonameid: CityId | None = None
    has_profile: bool | None = None
    per_page: PerPage = 20


class CityPath(BaseModel):
    id: int = Field(
        ge=0, le=INT64_MAX, description="the city's id as the API returns it (a gazetteer city's id is its geonameid)"
    )


# ---------------------------------------------------------------- profiles
# pydantic leaves the keys of a dict unconstrained in the JSON schema: say which keys are accepted.
SECTOR_NAMES: dict[str, Any] = {"propertyNames": {"enum": list(SECTOR_KEYS)}}


class ProfileIn(Body):
    offers: dict[SectorKey, Weight] = Field(
        default_factory=dict, description="sector → weight in [0, 1]", json_schema_extra=SECTOR_NAMES
    )
    seeks: dict[SectorKey, Weight] = Field(
        default_factory=dict, description="sector → weight in [0, 1]", json_schema_extra=SECTOR_NAMES
    )
    description: str = Field(default="", max_length=5000)
    pref_countries: list[CountryCode] = Field(default_factory=list, max_length=50)
    pref_min_population: Population | None = None
    pref_max_population: Population | None = None
    pref_languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = Field(default_factory=list, max_length=20)
    seeking_partners: bool = True
    contact_name: str | None = Field(default=None, max_length=200)
    contact_email: EmailStr | None = None

    @model_validator(mode="after")
    def _range(self) -> ProfileIn:
        lo, hi = self.pref_min_population, self.pref_max_population
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("pref_min_population must not exceed pref_max_population")
        return self


class ProfilePublic(BaseModel):
    city_id: int
    offers: dict[str, float]
    seeks: dict[str, float]
    description: str
    pref_countries: list[str]
    pref_min_population: int | None
    pref_max_population: int | None
    pref_languages: list[str]
    seeking_partners: bool
    contact_name: str | None
    contact_email: str | None
    illustrative: bool
    updated_at: datetime
    rescore_job: str | None = None


# ---------------------------------------------------------------- suggestions
class SuggestionQuery(Strict):
    k: int = Field(default=10, ge=1, le=100)
    country: list[CountryCode] | None = Field(default=None, description="only candidates in these countries")
    sector: list[SectorKey] | None = Field(default=None, description="only candidates whose profile names a sector")
    min_population: Population | None = None
    max_population: Population | None = None
    max_distance_km: float | None = Field(default=None, gt=0, le=20_100)
    max_country_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="at most this share of the list from one country (default: a third; 1 = no diversity rule)",
    )

    @field_validator("country", "sector", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return split_commas(v)

    @model_validator(mode="after")
    def _range(self) -> SuggestionQuery:
        lo, hi = self.min_population, self.max_population
        if lo is not None and hi is not None and lo > hi:
            raise ValueError("min_population must not exceed max_population")
        return self

    def filtered(self) -> bool:
        return any(
            v is not None
            for v in (
                self.country,
                self.sector,
                self.min_population,
                self.max_population,
                self.max_distance_km,
                self.max_country_share,
            )
        )


class SectorFitPublic(BaseModel):
    sector: str
    label: str
    score: float
    reason: str


class SuggestionPublic(BaseModel):
    city: CityPublic
    score: float = Field(ge=0, le=1)
    components: dict[str, float]
    sectors: list[SectorFitPublic]
    distance_km: float
    rank: int


class ScoreSetPublic(BaseModel):
    id: int | None
    live: bool
    model_version: str
    created_at: datetime | None = None
    completed_at: datetime | None = None


class SuggestionNote(BaseModel):
    code: str = Field(description="what the note is about: `home_country_left_out`")
    country: CountryCode | None = None
    message: str = Field(description="for people: what the list leaves out, why, and how to see it")


class SuggestionList(BaseModel):
    data: list[SuggestionPublic]
    count: int
    score_set: ScoreSetPublic
    notes: list[SuggestionNote] = Field(
        default_factory=list,
        description="what the list leaves out that an official may look for (e.g. the city's own country where "
        "its places rarely twin at home), and how to see it",
    )


class PairPath(BaseModel):
    a: CityId
    b: CityId


class PairExplanation(BaseModel):
    city: CityPublic
    partner: CityPublic
    score: float
    components: dict[str, float]
    weights: dict[str, float]
    sectors: list[SectorFitPublic]
    distance_km: float
    already_partners: bool
    model_version: str


# ---------------------------------------------------------------- jobs
class RescoreRequest(Body):
    city_ids: list[CityId] | None = Field(
        default=None,
        max_length=MAX_ID_LIST,
        description=f"at most {MAX_ID_LIST} ids; omit it (and use scope) to rescore more",
    )
    scope: Literal["active", "all"] = Field(
        default="active", description="without city_ids: 'active' = cities with a profile or a partnership; 'all'"
    )


class JobPath(BaseModel):
    id: str = Field(max_length=36)


class JobPublic(BaseModel):
    id: str
    kind: str
    state: str
    total: int
    done: int
    progress: float
    params: dict[str, Any]
    score_set_id: int | None
    result: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# ---------------------------------------------------------------- partnerships
PartnershipStatus = Literal["active", "dormant", "proposed", "ended"]


class PartnershipCreate(Body):
    city_a_id: CityId
    city_b_id: CityId
    status: PartnershipStatus = "active"
    since: int | None = Field(default=None, ge=1900, le=2100)
    sectors: list[SectorKey] = Field(default_factory=list)
    source: str = Field(default="user", max_length=40)


class PartnershipQuery(Page):
    city: CityId | None = Field(default=None, description="only partnerships of this city")
    status: PartnershipStatus | None = None


class PartnershipPublic(BaseModel):
    id: int
    city_a: CityPublic
    city_b: CityPublic
    status: str
    since: int | None
    sectors: list[str]
    source: str
    created_at: datetime


class PartnershipList(BaseModel):
    data: list[PartnershipPublic]
    count: int
    page: int
    per_page: int


class SectorPublic(BaseModel):
    key: str
    label: str
    description: str


class SectorList(BaseModel):
    data: list[SectorPublic]
    count: int


class ErrorField(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    """Every error's body; some carry more (``service`` on 503: database or redis; ``current`` on a match's 409)."""

    model_config = ConfigDict(extra="allow")
    status: int
    message: str
    fields: list[ErrorField]


class ErrorResponse(BaseModel):
    error: ErrorBody


# ---------------------------------------------------------------- accounts and matches
MatchStatus = Literal[
    "proposed", "under_review", "accepted", "rejected", "confirmed", "declined", "withdrawn", "expired"
]
MatchAction = Literal["review", "accept", "reject", "confirm", "decline", "withdraw"]


class MePublic(BaseModel):
    id: int
    name: str
    role: str
    display_name: str
    cities: list[int]
    countries: list[str]


class MatchCreate(Body):
    city_id: CityId = Field(description="the proposing city (one of yours, if you are an official)")
    partner_id: CityId = Field(description="the suggested partner city")
    message: str = Field(
        default="", max_length=5000, description="why this partnership, for the coordinator and partner"
    )
    sectors: list[SectorKey] = Field(default_factory=list, max_length=15, description="chosen collaboration sectors")


class MatchDecision(Body):
    action: MatchAction = Field(
        description="review, accept, reject (coordinator); confirm, decline (the partner city); withdraw (proposer)"
    )
    note: str = Field(default="", max_length=5000, description="required to reject or decline: say why")
    expected_version: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="the version you saw; a different current version answers 409"
    )


class MatchQuery(Page):
    status: list[MatchStatus] | None = Field(default=None, description="comma-separated statuses")
    city: CityId | None = Field(default=None, description="matches of this city (either side)")
    country: CountryCode | None = Field(default=None, description="matches with a city in this country")
    queue: bool = Field(default=False, description="the coordinator's queue: awaiting a decision, oldest first")

    @field_validator("status", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return split_commas(v)


class MatchPath(BaseModel):
    id: RowId


class MatchEventPublic(BaseModel):
    id: int
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str
    at: datetime


class MatchPublic(BaseModel):
    id: int
    city: CityPublic
    partner: CityPublic
    status: MatchStatus
    message: str
    sectors: list[str]
    score: float | None
    proposed_by: str | None
    reviewer: str | None
    decision_note: str
    reason: str
    partnership_id: int | None
    version: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    allowed_actions: list[str] = Field(description="what the caller may do next")


class MatchDetail(MatchPublic):
    history: list[MatchEventPublic]


class MatchList(BaseModel):
    data: list[MatchPublic]
    count: int
    page: int
    per_page: int


class UserCreate(Body):
    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9._@-]+$")
    role: Literal["official", "coordinator", "admin"]
    cities: list[CityId] = Field(default_factory=list, max_length=100, description="an official's cities")
    countries: list[CountryCode] = Field(default_factory=list, max_length=250, description="a coordinator's scope")
    display_name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=8, max_length=200, description="for the console")


class UserQuery(Page):
    pass


class UserPath(BaseModel):
    name: str = Field(min_length=1, max_length=80)


class UserPublic(MePublic):
    active: bool
    tokens: int = Field(description="live API tokens")


class UserList(BaseModel):
    data: list[UserPublic]
    count: int
    page: int
    per_page: int


class TokenIssued(BaseModel):
    user: str
    token: str = Field(description="shown once: only its SHA-256 is stored")
    prefix: str


class TokensRevoked(BaseModel):
    user: str
    revoked: int
