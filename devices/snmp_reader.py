"""DeviceReader for SNMP profiles: normally one GETBULK per poll (scalars and columns), via snmp_codec."""

from __future__ import annotations

from devices.reading import Metric
from devices.snmp_codec import NO_SUCH, SnmpValue, decode, oid_key, plan_requests
from devices.snmp_profile import SnmpProfile
from devices.snmp_transport import BulkResponse, BulkUnsupported, SnmpTarget

# Many embedded agents (APC NMC, IntelliSlot) reject or truncate PDUs with more varbinds (tooBig).
GET_CHUNK = 40
# Largest combined GETBULK response we ask for; beyond it the GET + walk path keeps responses small.
BULK_MAX_VARBINDS = 60


class SnmpReader:
    """Reads every metric of one SNMP device described by `profile`."""

    # Every request costs a fixed ~0.5 ms of pysnmp/pyasn1 work besides its varbinds, so a poll is one
    # GETBULK: each scalar's parent as a non-repeater (GETNEXT of the parent is the scalar when it is
    # the parent's first instance) and the table columns as repeaters, max-repetitions = last poll's
    # row count + 1. Scalars GETNEXT cannot reach go through a GET; columns that outgrow the hint are
    # walked on; agents that cannot take the combined request get a GET plus a GETBULK walk.

    def __init__(
        self, profile: SnmpProfile, target: SnmpTarget, max_repetitions: int = 25, combine: bool = True
    ) -> None:
        self.profile = profile
        self.target = target
        self.max_repetitions = max_repetitions
        self._plan = plan_requests(profile)
        self._parent = {o: o.rpartition(".")[0] for o in self._plan.get_oids}
        # Scalars only: one GET is already one request; columns only: one walk is. Combine only both.
        # combine=False keeps the GET + walk path (peer comparisons, agents known to mishandle it).
        self._combined = combine and bool(self._plan.get_oids and self._plan.walk_roots)
        # Scalars GETNEXT of the parent does not return (another instance comes first, or GET and
        # GETNEXT disagree on this agent): always fetched with GET.
        self._get_path: set[str] = {o for o in self._plan.get_oids if self._parent[o].count(".") < 1}
        # Scalars a GET confirmed missing while GETNEXT skipped them: as long as GETNEXT still skips
        # them they are still missing, and the poll needs no GET to say so.
        self._absent: set[str] = set()
        self._rows: int | None = None  # most instances any column had last poll

    @property
    def combined(self) -> bool:
        """True while polls use the single combined GETBULK (False after the agent could not take it)."""
        return self._combined

    async def read(self) -> list[Metric]:
        """Poll the device once; raises DeviceTimeout / AuthFailure / DeviceProtocolError."""
        values = await self.read_raw()
        return decode(self.profile, values)

    async def read_raw(self) -> dict[str, SnmpValue]:
        """The varbinds of one poll, undecoded (for probes and peer comparisons)."""
        reps = self._bulk_repetitions()
        if not reps:
            return await self._read_split()
        try:
            return await self._read_combined(reps)
        except BulkUnsupported as exc:
            # tooBig (or a garbled layout): this agent cannot take the combined request. Another
            # errorStatus: it cannot if separate requests work; if they fail too, theirs is the error.
            if exc.definite:
                self._combined = False
            values = await self._read_split()
            self._combined = False
            return values

    def _bulk_repetitions(self) -> int:
        """max-repetitions for the combined request, or 0 when this poll should use GET + walk."""
        if not self._combined:
            return 0
        n = len({self._parent[o] for o in self._plan.get_oids if o not in self._get_path})
        m = len(self._plan.walk_roots)
        room = (BULK_MAX_VARBINDS - n) // m
        if n + m > GET_CHUNK or room < 1:
            return 0
        if self._rows is None:  # first poll: as many rows as fit; a longer table is walked on
            return min(self.max_repetitions, room)
        reps = self._rows + 1  # +1 so every column's end shows in the same response
        return reps if reps <= room else 0

    async def _read_combined(self, reps: int) -> dict[str, SnmpValue]:
        plan = self._plan
        parents = list(dict.fromkeys(self._parent[o] for o in plan.get_oids if o not in self._get_path))
        resp = await self.target.bulk(parents, plan.walk_roots, reps)
        values, skipped = self._scalars_from_next(dict(zip(parents, resp.next_of, strict=False)))
        need_get = [o for o in plan.get_oids if o not in values]
        for i in range(0, len(need_get), GET_CHUNK):
            values.update(await self.target.get(need_get[i : i + GET_CHUNK]))
        for oid in skipped:
            if values.get(oid) is NO_SUCH:
                self._absent.add(oid)
            else:  # GET has what GETNEXT skipped (agent with inconsistent views): trust GET only
                self._get_path.add(oid)
        values.update(resp.columns)
        self._rows = await self._finish_columns(resp, values)
        return values

    def _scalars_from_next(
        self, answers: dict[str, tuple[str, SnmpValue]]
    ) -> tuple[dict[str, SnmpValue], list[str]]:
        """Scalar values the non-repeaters (parent → GETNEXT answer) settle, and the scalars they skipped."""
        values: dict[str, SnmpValue] = {}
        skipped: list[str] = []
        for oid in self._plan.get_oids:
            got = answers.get(self._parent[oid])
            if got is None:  # parent not sent, or the agent truncated the response inside the non-repeaters
                continue
            nxt, val = got
            if nxt == oid:  # also frees a GET-path scalar whose parent another scalar shares
                values[oid] = val
                self._absent.discard(oid)
                self._get_path.discard(oid)
            elif oid in self._get_path:
                continue
            elif val is NO_SUCH or oid_key(nxt) > oid_key(oid):
                # Nothing between the parent and the scalar: it is missing. Known-missing ones need no
                # GET; the first time, a GET confirms it (and gives the exact answer).
                if oid in self._absent:
                    values[oid] = NO_SUCH
                else:
                    skipped.append(oid)
            else:  # another instance precedes it under the parent: GETNEXT of the parent never reaches it
                self._get_path.add(oid)
        return values, skipped

    async def _finish_columns(self, resp: BulkResponse, values: dict[str, SnmpValue]) -> int:
        """Walk on the columns the GETBULK did not end; the largest column's row count."""
        counts = dict(resp.counts)
        if resp.unfinished:
            more = await self.target.walk_many(
                list(resp.unfinished), self.max_repetitions, start=resp.unfinished
            )
            values.update(more)
            for root in resp.unfinished:
                prefix = root + "."
                counts[root] += sum(1 for o in more if o.startswith(prefix))
        return max(counts.values(), default=0)

    async def _read_split(self) -> dict[str, SnmpValue]:
        """One GET per GET_CHUNK scalars, then one GETBULK walk of every column."""
        values: dict[str, SnmpValue] = {}
        oids = self._plan.get_oids
        for i in range(0, len(oids), GET_CHUNK):
            values.update(await self.target.get(oids[i : i + GET_CHUNK]))
        if self._plan.walk_roots:
            walked = await self.target.walk_many(self._plan.walk_roots, self.max_repetitions)
            values.update(walked)
            if self._combined:  # the row count sizes the next combined request
                self._rows = max(
                    sum(1 for o in walked if o.startswith(r + ".")) for r in self._plan.walk_roots
                )
        return values

    async def prepare(self) -> None:
        """Register the target with the SNMP engine before the first poll (see SnmpTarget.prepare)."""
        await self.target.prepare()

    async def close(self) -> None:
        """Nothing to release per device: the SnmpTarget may be shared."""
