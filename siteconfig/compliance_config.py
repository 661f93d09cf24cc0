"""The site file's `compliance:` section: cadences, bounds and hours the CC-16000 checks hold a site to.

Every default comes from the anchors in docs/compliance.md (NFPA 110 monthly generator exercise at
≥ 30 % of nameplate for ≥ 30 min, a monthly UPS self-test, ASHRAE TC 9.9 envelopes, the TWSE trading
session, a quarterly access review); a site overrides what its own policy sets stricter or looser.
"""

from __future__ import annotations

from datetime import time
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from siteconfig.alerts_config import WEEKDAYS, Weekday, _clock
from siteconfig.config_types import Seconds, StrictModel

EnvelopeName = Literal["recommended", "A1", "A2", "A3", "A4"]


class Cadence(StrictModel):
    """How often something must happen, and how early the board warns that it is due."""

    every_days: int = Field(ge=1, description="Longest interval between two occurrences, in days.")
    warn_days: int = Field(7, ge=0, description="Warn this many days before it is due.")


class GeneratorTests(StrictModel):
    """What counts as the monthly generator exercise (NFPA 110 §8.4.2)."""

    min_load_pct: float = Field(30.0, gt=0, le=100, description="Lowest load, % of nameplate kW.")
    min_minutes: float = Field(30.0, gt=0, description="Continuous minutes on load; cool-down excluded.")
    cadence: Cadence = Field(default_factory=lambda: Cadence(every_days=31), description="Test interval.")


class GeneratorReadiness(StrictModel):
    """What 'ready' means for a standby generator: in Auto, fuel and starter battery above these."""

    fuel_min_pct: float = Field(50.0, ge=0, le=100, description="Lowest fuel level, %.")
    battery_min_v: float = Field(
        12.0, gt=0, description="Lowest starter-battery voltage (12 for a 12 V system, 24 for 24 V)."
    )


class Environment(StrictModel):
    """The temperature/humidity bounds of item (三) (ASHRAE TC 9.9, measured at server inlets)."""

    recommended: EnvelopeName = Field("recommended", description="Envelope the room should stay in.")
    allowable: EnvelopeName = Field("A1", description="Envelope it must never leave.")
    rh_max_pct: float = Field(
        60.0, gt=0, le=100, description="Recommended RH ceiling (ASHRAE 4th ed. 60 %; some read 70 %)."
    )
    window_h: float = Field(24.0, gt=0, description="Hours of history the live check looks at.")
    warn_outside_pct: float = Field(
        5.0, ge=0, le=100, description="Warn when more than this share of the window was outside recommended."
    )
    exclude_devices: list[str] = Field(
        default_factory=list,
        description="Env sensors not at a server inlet (hot aisle, return air): not judged by the envelopes.",
    )
    keep_days_measured: int = Field(
        400,
        ge=0,
        le=3660,
        description="Days back the compliance process keeps measured for reports (0: on demand only).",
    )


class PanelDoor(StrictModel):
    """A door of an access panel export: its name and the zone it opens."""

    name: str = Field(min_length=1, description="Door name as people call it.")
    zone: str = Field(min_length=1, description="Zone (door group) the grants name.")


class AccessRules(StrictModel):
    """Thresholds of the access-rights flags (CC-16000 (一)(十三)) and the panel's doors."""

    dormant_days: int = Field(90, ge=1, description="No use for this many days: DORMANT_90D (NIST PE-2: 90).")
    escort_window_s: float = Field(
        120.0, gt=0, description="An escort badges at the same door within this many seconds of a vendor."
    )
    min_travel_s: float = Field(
        60.0, gt=0, description="One credential at two doors closer in time than this: SHARED_CARD."
    )
    doors: dict[int, PanelDoor] = Field(
        default_factory=dict, description="Panel door numbers (ZKTeco DoorID 1-4) to door names and zones."
    )


class TradingSession(StrictModel):
    """When maintenance must not stop systems (TWSE regular session, site time zone)."""

    start: time = Field(time(9, 0), description="Session start, HH:MM.")
    end: time = Field(time(13, 30), description="Session end, HH:MM.")
    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS[:5]),
        description="Trading weekdays (holidays are not modelled).",
    )

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hhmm(cls, v: Any) -> Any:
        return _clock(v)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} must be after start {self.start:%H:%M}")
        return self


class Redundancy(StrictModel):
    """N of item (六): units needed to carry the load; the check wants N+1 healthy (Uptime Tier II)."""

    crac_needed: int | None = Field(None, ge=1, description="CRAC units needed (default: configured - 1).")
    ups_needed: int | None = Field(None, ge=1, description="UPS units needed (default: configured - 1).")


class Incidents(StrictModel):
    """CC-20000 (五): critical alerts of these classes open an incident review, due in so many days."""

    classes: list[str] = Field(
        default_factory=lambda: ["ups", "genset", "crac", "contact", "door", "env"],
        description="Alert classes that open a review (power, cooling, fire/leak, door, environment).",
    )
    review_days: int = Field(14, ge=1, description="Days to record cause and measures.")


class ComplianceConfig(StrictModel):
    """The CC-16000 board: cadences and bounds; every check is evaluated every `evaluate_every_s`."""

    enabled: bool = Field(True, description="Run the compliance process with `roomguard run`.")
    evaluate_every_s: Seconds = Field(30.0, description="Seconds between two evaluations of the board.")
    generator_tests: GeneratorTests = Field(default_factory=GeneratorTests, description="Generator tests.")
    generator_readiness: GeneratorReadiness = Field(
        default_factory=GeneratorReadiness, description="Generator readiness."
    )
    ups_tests: Cadence = Field(default_factory=lambda: Cadence(every_days=31), description="UPS self-tests.")
    fire_inspection: Cadence = Field(
        default_factory=lambda: Cadence(every_days=183, warn_days=30),
        description="Fire-system inspections (消防安全設備檢修; semi-annual for 甲類 premises).",
    )
    emergency_lighting: Cadence = Field(
        default_factory=lambda: Cadence(every_days=31),
        description="Emergency-lighting tests (NFPA 101 monthly).",
    )
    drills: Cadence = Field(
        default_factory=lambda: Cadence(every_days=365, warn_days=30),
        description="Recovery-plan drills (CC-20000 (六)).",
    )
    access_review: Cadence = Field(
        default_factory=lambda: Cadence(every_days=92, warn_days=14),
        description="Access-rights reviews (CC-16000 (十三); quarterly).",
    )
    access: AccessRules = Field(default_factory=lambda: AccessRules(), description="Access-rights flags.")
    environment: Environment = Field(default_factory=Environment, description="Environmental bounds.")
    trading_session: TradingSession = Field(default_factory=TradingSession, description="Trading hours.")
    redundancy: Redundancy = Field(default_factory=Redundancy, description="N of N+1.")
    incidents: Incidents = Field(default_factory=Incidents, description="Incident reviews.")
    duty_lookahead_h: int = Field(
        24, ge=1, description="Hours ahead the duty roster must cover (item (七)1: a posted operator)."
    )
    door_alarm_ack_minutes: float = Field(
        30.0, gt=0, description="Minutes within which a door alarm must be acknowledged."
    )
    lookback_days: int = Field(
        183, ge=1, description="Period the record checks look at (TWSE inspects semi-annually)."
    )
