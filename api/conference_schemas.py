"""API shapes of conference mode (pydantic): what clients send and what they get back."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from api.schemas import SectorKey, Strict

WishKind = Literal["must_meet", "would_like", "follow_up", "no_thanks", "none"]
Language = Field(pattern=r"^[a-z]{2,3}$", description="ISO 639 code, lower case (zh, en, es)")


def _language(v: str) -> str:
    v = v.strip().lower()
    if not (2 <= len(v) <= 3 and v.isalpha() and v.isascii()):
        raise ValueError(f"{v!r} is not a language code such as 'en' or 'zh'")
    return v


class SlotIn(Strict):
    starts_at: AwareDatetime = Field(description="start, ISO 8601 with a UTC offset")
    ends_at: AwareDatetime
    tables: int = Field(ge=0, le=1000, description="tables for one-to-one meetings in this slot")
    interpreters: dict[str, int] = Field(
        default_factory=dict, description="interpreters on duty in this slot per language (to and from the pivot)"
    )

    @field_validator("ends_at")
    @classmethod
    def _after_start(cls, v: Any, info: ValidationInfo) -> Any:
        start = info.data.get("starts_at")
        if start is not None and v <= start:
            raise ValueError("must be after starts_at")
        return v

    @field_validator("interpreters")
    @classmethod
    def _capacities(cls, v: dict[str, int]) -> dict[str, int]:
        out = {}
        for lang, n in v.items():
            if n < 0 or n > 1000:
                raise ValueError(f"capacity of {lang!r} must be 0–1000")
            out[_language(lang)] = n
        return out


class ConferenceCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    place: str = Field(default="", max_length=200)
    starts_on: date
    ends_on: date
    timezone: str = Field(default="UTC", max_length=60, description="IANA time zone used to show times")
    pivot_language: str = Field(default="en", description="the language interpreters translate to and from")
    description: str = Field(default="", max_length=5000)
    slots: list[SlotIn] = Field(min_length=1, max_length=200)

    @field_validator("ends_on")
    @classmethod
    def _ends_after_start(cls, v: date, info: ValidationInfo) -> date:
        start = info.data.get("starts_on")
        if start is not None and v < start:
            raise ValueError("must not be before starts_on")
        return v

    @field_validator("pivot_language")
    @classmethod
    def _pivot(cls, v: str) -> str:
        return _language(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r}") from e
        return v


class Delegate(Strict):
    name: str = Field(min_length=1, max_length=200)
    title: str = Field(default="", max_length=200)


class DelegationCreate(Strict):
    city_id: int = Field(description="the place: a gazetteer city, or a custom place (province, state, county)")
    delegates: list[Delegate] = Field(default_factory=list, max_length=50)
    languages: list[str] | None = Field(
        default=None, max_length=10, description="languages spoken (default: the country's languages)"
    )
    slot_ids: list[int] | None = Field(default=None, description="the slots it attends (default: all)")

    @field_validator("languages")
    @classmethod
    def _langs(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else list(dict.fromkeys(_language(x) for x in v))


class WishIn(Strict):
    delegation_id: int = Field(description="the other delegation")
    wish: WishKind


class WishesIn(Strict):
    wishes: list[WishIn] = Field(max_length=500, description="replaces all of this delegation's wishes")


class ScheduleRequest(Strict):
    time_limit: float | None = Field(default=None, gt=0, le=600, description="seconds (default: the setting)")


class ProposalRequest(Strict):
    message: str = Field(default="", max_length=5000)
    sectors: list[SectorKey] = Field(default_factory=list, max_length=15)


class ConferencePath(BaseModel):
    id: int


class DelegationPath(BaseModel):
    id: int
    delegation_id: int


class SlotPath(BaseModel):
    id: int
    slot_id: int


class MeetingPath(BaseModel):
    id: int
    meeting_id: int


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class SlotPublic(Open):
    id: int
    position: int
    starts_at: str
    ends_at: str
    tables: int
    interpreters: dict[str, int]
    lost: bool


class ConferencePublic(Open):
    id: int
    name: str
    place: str
    starts_on: str
    ends_on: str
    timezone: str
    pivot_language: str
    illustrative: bool
    slots: list[SlotPublic]
    delegations: int
    schedule: dict[str, Any]


class ConferenceList(BaseModel):
    data: list[ConferencePublic]
    count: int


class DelegationPublic(Open):
    id: int
    city: dict[str, Any]
    status: str
    delegates: list[dict[str, str]]
    languages: list[str]
    slot_ids: list[int]


class DelegationList(BaseModel):
    data: list[DelegationPublic]
    count: int


class ListOf(Open):
    data: list[dict[str, Any]]
    count: int
