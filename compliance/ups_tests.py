# ruff: noqa: RUF001 - zh-TW texts use full-width punctuation, as Traditional Chinese does.
"""UPS self-tests from telemetry: a new final test_result becomes an UpsTest record (CC-16000 (五)).

Pure: samples come in, records come out; what the detector remembers per UPS (the last test_result it
read and when) is plain JSON (`to_json`/`from_json`), so a restart never records the same result twice.

The rules, per UPS:

* Final results: passed, warning, failed, aborted, invalid_test. A sample whose test_result is final
  and differs from the last value read (in_progress, none, unknown, another final value, or anything
  else) records a test at that sample's time: the UPS reports no test time, the change is when we saw it.
* The first sample of a UPS the detector knows nothing about records a final result once, with a note
  that the test time is unknown; the value is then remembered, so a result that stays never records again.
* A sample without a test_result (bad quality, not reported) changes nothing; a sample not newer than
  the last one of the same UPS (a redelivery) is ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from compliance.facts import Value
from compliance.kinds import UpsTest

STATE_VERSION = 1
FinalResult = Literal["passed", "warning", "failed", "aborted", "invalid_test"]
FINAL: tuple[FinalResult, ...] = get_args(FinalResult)
STARTED_BY = ("internal", "local_ui", "protocol")  # test_source values that name who started it
FIRST_READ_NOTE = (
    "result already present when first read; test time not reported by the device / "
    "首次讀取時已有結果，設備未提供測試時間"
)

Source = Literal["telemetry", "history"]


@dataclass(frozen=True, slots=True)
class UpsSample:
    """One UPS reading as the detector needs it (None: not reported or bad quality)."""

    ts: datetime
    device: str
    test_result: str | None
    test_source: str | None = None


def ups_sample_from_metrics(ts: datetime, device: str, metrics: Mapping[str, Value]) -> UpsSample:
    """An UpsSample from a device's metric values (catalog names test_result, test_source)."""
    result, source = metrics.get("test_result"), metrics.get("test_source")
    return UpsSample(
        ts=ts,
        device=device,
        test_result=result if isinstance(result, str) else None,
        test_source=source if isinstance(source, str) else None,
    )


def _final(value: str) -> FinalResult | None:
    for f in FINAL:
        if value == f:
            return f
    return None


class UpsTestDetector:
    """Turns UPS samples into UpsTest records when a final self-test result appears (module docstring)."""

    def __init__(self, *, source: Source = "telemetry") -> None:
        self.source: Source = source
        self._last: dict[str, tuple[str, datetime]] = {}  # device → (test_result, when read)

    def to_json(self) -> dict[str, Any]:
        """What the detector remembers, as JSON-compatible data."""
        return {
            "v": STATE_VERSION,
            "devices": {k: {"result": r, "at": t.isoformat()} for k, (r, t) in sorted(self._last.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None, *, source: Source = "telemetry") -> UpsTestDetector:
        """A detector that continues from saved state (None: from scratch)."""
        det = cls(source=source)
        if data is not None:
            if data.get("v") != STATE_VERSION:
                raise ValueError(f"UPS test state version {data.get('v')!r}, expected {STATE_VERSION}")
            det._last = {
                k: (str(v["result"]), datetime.fromisoformat(v["at"])) for k, v in data["devices"].items()
            }
        return det

    def feed(self, sample: UpsSample) -> list[UpsTest]:
        """Take one sample; the test it reveals, if any."""
        if sample.ts.utcoffset() is None:
            raise ValueError(f"sample time {sample.ts.isoformat()} has no UTC offset")
        if sample.test_result is None:
            return []
        known = self._last.get(sample.device)
        if known is not None and sample.ts <= known[1]:
            return []
        self._last[sample.device] = (sample.test_result, sample.ts)
        final = _final(sample.test_result)
        if final is None or (known is not None and known[0] == sample.test_result):
            return []
        return [
            UpsTest(
                device=sample.device,
                tested_at=sample.ts,
                test_type="self_test",
                result=final,
                started_by=sample.test_source if sample.test_source in STARTED_BY else None,
                source=self.source,
                notes=FIRST_READ_NOTE if known is None else None,
                time_known=known is not None,
            )
        ]


def detect_ups_tests(samples: Iterable[UpsSample]) -> list[UpsTest]:
    """Rebuild UPS tests from stored samples (source 'history'), in time order."""
    det = UpsTestDetector(source="history")
    out: list[UpsTest] = []
    for s in sorted(samples, key=lambda s: s.ts):
        out.extend(det.feed(s))
    return out
