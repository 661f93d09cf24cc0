"""Password rules (pure): what a new password must hold, and every reason one falls short."""

from __future__ import annotations

from siteconfig.api_config import PasswordRules

CLASSES = ("letters", "digits", "symbols")


def classes_of(password: str) -> set[str]:
    """The character classes a password uses: letters (any script), digits, symbols (the rest)."""
    found: set[str] = set()
    for ch in password:
        if ch.isalpha():
            found.add("letters")
        elif ch.isdigit():
            found.add("digits")
        elif not ch.isspace():
            found.add("symbols")
    return found


def password_problems(password: str, rules: PasswordRules, username: str | None = None) -> list[str]:
    """Why `password` breaks `rules` (empty: it is acceptable); messages in zh-TW and English."""
    problems: list[str] = []
    if len(password) < rules.min_length:
        problems.append(f"密碼至少 {rules.min_length} 個字元 at least {rules.min_length} characters")
    used = classes_of(password)
    if rules.require_letter and "letters" not in used:
        problems.append("密碼須含字母 must contain letters")
    if len(used) < rules.min_classes:
        problems.append(
            f"密碼須混合 {rules.min_classes} 類字元 must mix {rules.min_classes} of "
            f"{', '.join(CLASSES)} (has {', '.join(sorted(used)) or 'none'})"
        )
    if username and username.casefold() in password.casefold():
        problems.append("密碼不可包含帳號 must not contain the user name")
    return problems
