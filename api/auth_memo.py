"""Whose a token or session is, remembered while the audit log's head stays where it was: every change
that could end or alter a credential (login, logout, a user added, changed, disabled or given roles, a
token made or revoked, a failed login, a lock-out) is audited in the same transaction as the change
(api/store.py), so an unchanged head means an unchanged answer. What time alone changes (a session's
expiry, a due write of the last use) is checked on every request by the caller."""

from __future__ import annotations

from api.store import Credential

# A bound on what is held (callers are a few people and scripts; a flood of distinct logins just starts
# the memo over).
MEMO_LIMIT = 1024


class AuthMemo:
    """Credentials by the digest of their secret, valid for one audit head (used from the event loop)."""

    def __init__(self, limit: int = MEMO_LIMIT) -> None:
        self._limit = limit
        self._head: int | None = None
        self._known: dict[str, Credential] = {}

    def _at(self, head: int) -> None:
        if head != self._head:
            self._known.clear()
            self._head = head

    def get(self, head: int, key: str) -> Credential | None:
        """The credential remembered for `key` at this audit head, or None."""
        self._at(head)
        return self._known.get(key)

    def put(self, head: int, key: str, credential: Credential) -> None:
        """Remember `credential` for `key` at this audit head (only live ones: a refusal is not kept)."""
        self._at(head)
        if len(self._known) >= self._limit:
            self._known.clear()
        self._known[key] = credential
