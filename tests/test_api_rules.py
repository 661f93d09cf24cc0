"""The pure parts of the web API's auth: password rules, the role matrix, login throttling with an
injected clock, and the site file's `api:` section (defaults, located errors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from api.passwords import classes_of, password_problems
from api.roles import MATRIX, Permission, Role, UnknownRole, allows, parse_role, permissions, roles_with
from api.throttle import LoginState, after_failure, after_success, is_locked
from devices.yamlload import ConfigError
from siteconfig.api_config import ApiConfig, LoginThrottle, PasswordRules, is_loopback
from siteconfig.config import load_site
from testkit.example_site import example_site

T0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
CC18000 = PasswordRules()


# -- password rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["abc123", "機房a1b2c3", "pass-word", "Z9z9z9z9", "ab!cd?"])
def test_the_cc18000_minimum_accepts_six_characters_mixing_letters_with_digits_or_symbols(
    password: str,
) -> None:
    assert password_problems(password, CC18000) == []


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("ab12", "at least 6 characters"),
        ("abcdefgh", "must mix 2 of"),
        ("12345678", "must contain letters"),
        ("!!!???123", "must contain letters"),
        ("      ", "must contain letters"),
    ],
)
def test_the_cc18000_minimum_refuses_short_or_unmixed_passwords(password: str, fragment: str) -> None:
    problems = password_problems(password, CC18000)
    assert any(fragment in p for p in problems), problems


def test_stricter_rules_are_configurable() -> None:
    rules = PasswordRules(min_length=12, min_classes=3)
    assert password_problems("abc123def456", rules) == [
        "密碼須混合 3 類字元 must mix 3 of letters, digits, symbols (has digits, letters)"
    ]
    assert password_problems("abc123def45!", rules) == []


def test_a_password_holding_the_user_name_is_refused() -> None:
    assert password_problems("xWang-2026", CC18000, "wang") == [
        "密碼不可包含帳號 must not contain the user name"
    ]


def test_classes_count_every_script_as_letters_and_spaces_as_nothing() -> None:
    assert classes_of("機房 9") == {"letters", "digits"}
    assert classes_of("a-") == {"letters", "symbols"}


def test_rules_never_go_below_the_exchange_minimum() -> None:
    with pytest.raises(ValidationError, match="min_length"):
        PasswordRules(min_length=4)
    with pytest.raises(ValidationError, match="min_classes"):
        PasswordRules(min_classes=1)


# -- roles ---------------------------------------------------------------------------------------


def test_every_role_reads_the_status_and_only_admin_manages_users() -> None:
    for role in Role:
        assert allows([role], Permission.STATUS_READ)
    assert roles_with(Permission.USERS_MANAGE) == (Role.ADMIN,)


def test_the_auditor_reads_and_downloads_evidence_but_changes_nothing() -> None:
    auditor = permissions([Role.AUDITOR])
    assert Permission.EVIDENCE_DOWNLOAD in auditor
    assert Permission.AUDIT_READ in auditor
    writes = {
        Permission.ALERTS_ACT,
        Permission.RECORDS_WRITE,
        Permission.ACCESS_DECIDE,
        Permission.ACCESS_SIGN_OFF,
        Permission.EVIDENCE_GENERATE,
        Permission.USERS_MANAGE,
    }
    assert not auditor & writes


def test_duties_are_separated_in_the_matrix() -> None:
    # The user administrator does not sign off access reviews, nor act on alerts or records.
    assert not allows([Role.ADMIN], Permission.ACCESS_SIGN_OFF)
    assert not allows([Role.ADMIN], Permission.ALERTS_ACT)
    # The operator acts on alerts and records but does not sign off the review.
    assert allows([Role.OPERATOR], Permission.ALERTS_ACT)
    assert not allows([Role.OPERATOR], Permission.ACCESS_SIGN_OFF)
    assert roles_with(Permission.ACCESS_SIGN_OFF) == (Role.APPROVER,)


def test_several_roles_add_up_and_unknown_names_grant_nothing() -> None:
    assert permissions(["viewer", "approver"]) == MATRIX[Role.APPROVER]
    assert permissions(["root"]) == frozenset()


def test_an_unknown_role_names_the_valid_ones() -> None:
    assert parse_role("auditor") is Role.AUDITOR
    with pytest.raises(UnknownRole, match="valid: viewer, operator, approver, auditor, admin"):
        parse_role("superuser")


# -- throttling ----------------------------------------------------------------------------------


def test_the_nth_wrong_password_locks_for_the_configured_minutes() -> None:
    policy = LoginThrottle(max_failures=3, lockout_minutes=15)
    state = LoginState()
    for n in (1, 2):
        outcome = after_failure(state, T0, policy)
        assert not outcome.locked_now
        assert outcome.state == LoginState(n, None)
        state = outcome.state
    outcome = after_failure(state, T0, policy)
    assert outcome.locked_now
    assert outcome.state.locked_until == T0 + timedelta(minutes=15)
    assert is_locked(outcome.state, T0 + timedelta(minutes=14, seconds=59))
    assert not is_locked(outcome.state, T0 + timedelta(minutes=15))


def test_after_a_lock_out_the_count_starts_afresh() -> None:
    policy = LoginThrottle(max_failures=2, lockout_minutes=1)
    locked = LoginState(2, T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=2)
    outcome = after_failure(locked, later, policy)
    assert not outcome.locked_now
    assert outcome.state == LoginState(1, None)


def test_a_correct_password_clears_the_count() -> None:
    assert after_success() == LoginState(0, None)


# -- the site file's api: section ----------------------------------------------------------------


def test_defaults_listen_on_loopback_with_cookies_secure_elsewhere() -> None:
    cfg = ApiConfig()
    assert cfg.host == "127.0.0.1"
    assert not cfg.secure_cookies
    assert ApiConfig(host="0.0.0.0").secure_cookies
    assert ApiConfig(host="::1").secure_cookies is False
    assert ApiConfig(host="localhost", cookie_secure=True).secure_cookies
    assert cfg.passwords == CC18000
    assert (is_loopback("127.0.0.2"), is_loopback("10.0.0.1"), is_loopback("edge-1")) == (True, False, False)


def test_tls_needs_both_files() -> None:
    with pytest.raises(ValidationError, match="tls_key: tls_cert and tls_key go together"):
        ApiConfig(tls_cert=Path("/etc/roomguard/cert.pem"))


def test_a_site_file_without_api_keeps_loading(tmp_path: Path) -> None:
    site, _ = example_site(tmp_path / "site.yaml")
    assert load_site(site).api == ApiConfig()


def test_a_bad_api_key_is_named_with_its_line(tmp_path: Path) -> None:
    site, _ = example_site(tmp_path / "site.yaml")
    lines = site.read_text().splitlines()
    site.write_text(
        "\n".join(
            [
                *lines,
                "api:",
                "  port: 8470",
                "  login:",
                "    max_failures: 0",
                "  passwords:",
                "    min_len: 8",
            ]
        )
        + "\n"
    )
    with pytest.raises(ConfigError) as info:
        load_site(site)
    text = str(info.value)
    assert f":{len(lines) + 4}" in text, text
    assert "api.login.max_failures" in text, text
    assert "api.passwords.min_len" in text, text
