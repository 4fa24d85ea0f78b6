"""The controlled vocabulary of collaboration sectors.

Profiles weigh each sector twice, for what a city *offers* and what it *seeks*. Keys are stable identifiers used in
the API and the database; labels are what people read.
"""

from __future__ import annotations

SECTORS: tuple[tuple[str, str, str], ...] = (
    (
        "green_cities",
        "green cities & urban planning",
        "Urban planning, green building, parks, public transport.",
    ),
    (
        "climate_environment",
        "climate & environment",
        "Climate action, emissions, water, waste, biodiversity.",
    ),
    (
        "economy_employment",
        "economy & employment",
        "Jobs, local business, vocational training, labour markets.",
    ),
    ("trade_investment", "trade & investment", "Trade missions, investment promotion, business delegations."),
    ("education", "education", "Schools, universities, joint courses, student and teacher exchanges."),
    ("youth", "youth", "Youth exchanges, youth councils, summer camps, volunteering."),
    ("culture_arts", "culture & arts", "Museums, festivals, heritage, artist residencies."),
    ("music", "music", "Orchestras, conservatories, music festivals and tours."),
    ("tourism", "tourism", "Visitor promotion, heritage tourism, hospitality."),
    ("science_research", "science & research", "Research institutes, joint research, laboratories."),
    ("health", "health", "Hospitals, public health, elderly care, medical training."),
    (
        "technology_innovation",
        "technology & innovation",
        "Start-ups, smart city, digital services, incubators.",
    ),
    ("agriculture_food", "agriculture & food", "Farming, food processing, rural development."),
    ("sports", "sports", "Sports clubs, tournaments, athlete exchanges."),
    ("maritime_ports", "maritime & ports", "Ports, logistics, shipping, coastal management."),
)

SECTOR_KEYS: tuple[str, ...] = tuple(key for key, _, _ in SECTORS)
SECTOR_LABELS: dict[str, str] = {key: label for key, label, _ in SECTORS}
SECTOR_INDEX: dict[str, int] = {key: i for i, key in enumerate(SECTOR_KEYS)}


def label(key: str) -> str:
    """The human label of a sector key (the key itself if unknown)."""
    return SECTOR_LABELS.get(key, key)
