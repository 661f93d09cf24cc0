"""A webhook receiver for people: verifies each alert's signature and prints it (demo, commissioning).

`roomguard alerts receive --port 8098 --key-env VAR` shows what a site's webhook receiver would get, in
both languages, and refuses what is not signed with the key (docs/alerts.md, "Verifying a webhook").
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from alerts.notify.webhook import verify_signature


def describe(payload: dict[str, Any]) -> str:
    """One alert payload (or a summary of several) as lines a person reads, in both languages."""
    if payload.get("schema") == "roomguard.alert-summary/1":
        labels = payload.get("labels") or {}
        room = labels.get("room_name") or labels.get("room") or ""
        lines = [f"[SUMMARY 彙總] {payload.get('count', '?')} alerts 則告警 {room}".rstrip()]
        for member in payload.get("alerts") or []:
            alert = member.get("alert") if isinstance(member, dict) else None
            if isinstance(alert, dict):
                lines += ["  " + line for line in describe(alert).splitlines()]
        return "\n".join(lines)
    texts = payload.get("texts") or {}
    labels = payload.get("labels") or {}
    lines = [
        f"[{str(payload.get('state', '?')).upper()}] {str(payload.get('severity', '')).upper()} "
        f"{payload.get('rule', '')} {labels.get('room', '')}/{labels.get('device', '')}".rstrip()
    ]
    for lang in ("zh_TW", "en"):
        text = texts.get(lang) or ""
        # A rule's own template may already carry its forecast or margin: show each once.
        for extra in (texts.get(f"forecast_{lang}"), texts.get(f"margin_{lang}")):
            if extra and extra not in text:
                text = f"{text}; {extra}" if text else extra
        if text:
            lines.append(f"  {text}")
    return "\n".join(lines)


class AlertReceiver:
    """An aiohttp app that accepts signed alert payloads on any path and hands them to `show`."""

    def __init__(self, key: str, show: Callable[[str], None], log: Path | None = None) -> None:
        self.key = key
        self.show = show
        self.log = log
        self.accepted = 0
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        """Verify, record and show one delivery; 401 for a bad or missing signature."""
        body = await request.read()
        ts = request.headers.get("X-Roomguard-Timestamp", "")
        sig = request.headers.get("X-Roomguard-Signature", "")
        if not verify_signature(self.key, ts, body, sig, now=time.time()):
            self.refused += 1
            self.show(f"refused 拒收: a request to {request.path} without a valid signature")
            return web.Response(status=401, text="bad signature")
        self.accepted += 1
        try:
            payload = json.loads(body)
        except ValueError:
            return web.Response(status=400, text="not JSON")
        self.show(describe(payload))
        if self.log is not None:
            with self.log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(payload, ensure_ascii=False) + "\n")
        return web.Response(text="ok")

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self.handle)
        return app


async def serve(receiver: AlertReceiver, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve until `stop` is set."""
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
