"""`roomguard scenario`: list, start or clear a scenario on a running simulator (HTTP client)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ScenarioError(RuntimeError):
    """The simulator refused the request or could not be reached; the message says why."""


def simulator_url(host: str, port: int) -> str:
    """Base URL of a simulator's control API (wildcard binds are reached on loopback)."""
    if host in ("0.0.0.0", "::", ""):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def call(base: str, method: str, name: str | None = None, device: str | None = None) -> Any:
    """One request to the control API; returns the decoded JSON answer."""
    path = "/scenarios" + (f"/{urllib.parse.quote(name)}" if name else "")
    if device:
        path += "?" + urllib.parse.urlencode({"device": device})
    req = urllib.request.Request(base + path, method=method)  # noqa: S310 - http:// URL built above
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - our own loopback simulator
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        try:
            detail = json.loads(body)
            msg = detail.get("error", body)
            valid = detail.get("valid")
            if valid:
                msg += f"; valid choices: {', '.join(valid)}"
        except (ValueError, AttributeError):
            msg = body
        raise ScenarioError(f"{method} {path}: {msg}") from None
    except OSError as exc:
        raise ScenarioError(
            f"simulator not reachable at {base} ({exc}); is `roomguard simulate` running?"
        ) from None


def format_scenarios(listing: Any) -> str:
    """The scenario list as text, English and Traditional Chinese; `*` marks the active ones."""
    items = listing.get("scenarios", listing) if isinstance(listing, dict) else listing
    lines = []
    for item in items:
        if isinstance(item, dict):
            mark = "*" if item.get("active") else " "
            lines.append(f"{mark} {item.get('name', '?'):<24} {item.get('en', '')} / {item.get('zh', '')}")
        else:
            lines.append(str(item))
    return "\n".join(lines)
