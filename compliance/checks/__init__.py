"""The CC-16000 checks: one pure function of `Facts` per board item, evaluated in board order.

Rule of the board: a missing input is `unknown`, never `pass`. Only the items in ABSENCE_IS_PASS pass on
empty facts, because for them nothing in the period is itself compliant (no vendor came, no maintenance
stopped a system, nothing was disposed of, nothing went wrong); every other item needs evidence.
"""

from __future__ import annotations

from compliance.checks.assets import check_disposal, check_no_sublet
from compliance.checks.common import Check
from compliance.checks.continuity import check_drills, check_incident_review
from compliance.checks.doors import check_access_review, check_doors
from compliance.checks.duty import check_duty_roster
from compliance.checks.environment import check_cooling, check_environment
from compliance.checks.inspections import check_emergency_lighting, check_fire
from compliance.checks.people import check_maintenance_hours, check_vendor_escort
from compliance.checks.power import check_generator_ready, check_generator_test, check_ups_test
from compliance.checks.redundancy import check_redundancy
from compliance.facts import Facts
from compliance.items import (
    ACCESS_REVIEW,
    COOLING,
    DISPOSAL,
    DOORS,
    DRILLS,
    DUTY_ROSTER,
    EMERGENCY_LIGHTING,
    ENVIRONMENT,
    FIRE,
    GENERATOR_READY,
    GENERATOR_TEST,
    INCIDENT_REVIEW,
    ITEMS,
    MAINTENANCE_HOURS,
    NO_SUBLET,
    REDUNDANCY,
    UPS_TEST,
    VENDOR_ESCORT,
)
from compliance.result import CheckResult

CHECKS: dict[str, Check] = {
    DOORS.key: check_doors,
    FIRE.key: check_fire,
    EMERGENCY_LIGHTING.key: check_emergency_lighting,
    COOLING.key: check_cooling,
    ENVIRONMENT.key: check_environment,
    GENERATOR_READY.key: check_generator_ready,
    GENERATOR_TEST.key: check_generator_test,
    UPS_TEST.key: check_ups_test,
    REDUNDANCY.key: check_redundancy,
    DUTY_ROSTER.key: check_duty_roster,
    VENDOR_ESCORT.key: check_vendor_escort,
    MAINTENANCE_HOURS.key: check_maintenance_hours,
    DISPOSAL.key: check_disposal,
    ACCESS_REVIEW.key: check_access_review,
    NO_SUBLET.key: check_no_sublet,
    INCIDENT_REVIEW.key: check_incident_review,
    DRILLS.key: check_drills,
}

# Items whose evidence may legitimately be "nothing happened in the period".
ABSENCE_IS_PASS: frozenset[str] = frozenset(
    {VENDOR_ESCORT.key, MAINTENANCE_HOURS.key, DISPOSAL.key, INCIDENT_REVIEW.key}
)


def evaluate(facts: Facts) -> list[CheckResult]:
    """Every item's result, in board order (ITEMS)."""
    return [CHECKS[item.key](facts) for item in ITEMS]


__all__ = ["ABSENCE_IS_PASS", "CHECKS", "evaluate"]
