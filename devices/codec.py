"""Modbus registers/bits ↔ metrics for one point, under any byte/word order (pure, no I/O)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence

from devices.errors import DecodeError
from devices.modbus_profile import TYPE_WIDTH, WirePoint
from devices.reading import Metric, Quality, Value

# A compiled decoder appends the point's metrics decoded from data[offset:offset+width] to `out`.
Decoder = Callable[[Sequence[int] | Sequence[bool], int, list[Metric]], None]
RawData = Sequence[int] | Sequence[bool]

_SIGNED = frozenset({"int16", "int32", "int64"})
_FLOAT = {"float32": ">f", "float64": ">d"}
_UNAVAILABLE = Quality.UNAVAILABLE
_DECODE_ERROR = Quality.DECODE_ERROR
_CACHE_MAX = 256  # bound per-point memo tables (bit patterns seen); cleared when full


def _swap(r: int) -> int:
    return ((r & 0xFF) << 8) | (r >> 8)


def _ordered(regs: Sequence[int], word_order: str, byte_order: str) -> list[int]:
    """Registers rearranged into ABCD (big word, big byte) order."""
    out = [_swap(r) for r in regs] if byte_order == "little" else list(regs)
    if word_order == "little":
        out.reverse()
    return out


def _unsigned_reader(width: int, word_order: str, byte_order: str) -> Callable[[RawData, int], int]:
    """Function (data, offset) → the unsigned integer the `width` registers hold."""
    if width == 1:
        if byte_order == "big":
            return lambda d, o: int(d[o])
        return lambda d, o: _swap(int(d[o]))
    if word_order == "big" and byte_order == "big" and width == 2:
        # The common 32-bit MSW-first case (DSE GenComm, InRow, APC): keep it branch-free.
        return lambda d, o: (int(d[o]) << 16) | int(d[o + 1])

    def read(d: RawData, o: int) -> int:
        regs = d[o : o + width]
        if len(regs) != width:
            raise DecodeError(f"need {width} registers at offset {o}, got {len(regs)}")
        u = 0
        for r in _ordered([int(x) for x in regs], word_order, byte_order):
            u = (u << 16) | r
        return u

    return read


def metrics_with_quality(wp: WirePoint, quality: Quality) -> list[Metric]:
    """Every metric of a point with the same non-GOOD quality (failed block, decode error)."""
    return [Metric(m, None, quality) for m in wp.point.metric_names()]


def compile_decoder(wp: WirePoint) -> Decoder:
    """Build a fast decoder for one point; all checks and lookups are done here, once."""
    p = wp.point
    t = p.type
    if wp.table in ("coil", "discrete") or (t == "bool"):
        return _bool_decoder(wp)
    if t == "string":
        return _string_decoder(wp)
    if t == "nibbles":
        return _nibble_decoder(wp)
    getu = _unsigned_reader(wp.width, wp.word_order, wp.byte_order)
    sentinels = _sentinel_patterns(wp)
    if t == "bitfield":
        return _bitfield_decoder(wp, getu, sentinels)
    name = p.name
    bits = 16 * wp.width
    fmt = _FLOAT.get(t)
    signed = t in _SIGNED
    half, full = 1 << (bits - 1), 1 << bits
    apply = p.apply
    enum = p.enum
    identity = p.is_identity and p.enum is None and p.valid_range is None and fmt is None
    # A masked point is a bit field of an unsigned register: cut it out after the sentinel check.
    mask, shift = (p.mask, p.mask_shift) if p.mask is not None else (-1, 0)
    errors = (IndexError, DecodeError, TypeError, ValueError, struct.error)

    # Decoding is pure, so the Metric of the last raw pattern is reused: most registers do not change
    # between polls, and building a frozen Metric costs more than the whole decode (see bench notes).
    last_u: list[int] = [-1]
    last_m: list[Metric] = [Metric(name, None, _UNAVAILABLE)]

    def decode(d: RawData, o: int, out: list[Metric]) -> None:
        try:
            u = getu(d, o)
        except errors:
            out.append(Metric(name, None, _DECODE_ERROR))
            return
        if u == last_u[0]:
            out.append(last_m[0])
            return
        before = len(out)
        convert(u, out)
        last_u[0], last_m[0] = u, out[before]

    def convert(u: int, out: list[Metric]) -> None:
        if u in sentinels:
            out.append(Metric(name, None, _UNAVAILABLE))
            return
        raw: int | float
        if fmt is not None:
            raw = struct.unpack(fmt, u.to_bytes(bits // 8, "big"))[0]
            if not math.isfinite(raw):
                out.append(Metric(name, None, _UNAVAILABLE))
                return
        elif signed:
            raw = u - full if u >= half else u
        else:
            raw = (u & mask) >> shift
        if identity:
            out.append(Metric(name, raw))
        elif enum is not None and type(raw) is int:
            state = enum.get(raw)
            out.append(Metric(name, state if state is not None else f"unknown_{raw}"))
        else:
            out.append(apply(name, raw))

    return decode


def _sentinel_patterns(wp: WirePoint) -> frozenset[int]:
    """Sentinels as unsigned bit patterns of the point's width (so -1 and 0xFFFF both work)."""
    mask = (1 << (16 * wp.width)) - 1
    return frozenset(s & mask for s in wp.point.sentinels)


def _bool_decoder(wp: WirePoint) -> Decoder:
    name = wp.point.name
    on, off = Metric(name, True), Metric(name, False)
    enum = wp.point.enum
    if enum is not None:
        # A bit that names a state (SmartGen alarm coils: 1 = shutdown): the enum maps 0/1 to it.
        on, off = (Metric(name, enum.get(bit, f"unknown_{bit}")) for bit in (1, 0))

    def decode(d: RawData, o: int, out: list[Metric]) -> None:
        try:
            out.append(on if d[o] else off)
        except IndexError:
            out.append(Metric(name, None, _DECODE_ERROR))

    return decode


def _bitfield_decoder(
    wp: WirePoint, getu: Callable[[RawData, int], int], sentinels: frozenset[int]
) -> Decoder:
    pairs = sorted((wp.point.bits or {}).items())
    cache: dict[int, tuple[Metric, ...]] = {}

    def decode(d: RawData, o: int, out: list[Metric]) -> None:
        try:
            u = getu(d, o)
        except (IndexError, DecodeError):
            out.extend(Metric(m, None, _DECODE_ERROR) for _, m in pairs)
            return
        cached = cache.get(u)
        if cached is None:
            if u in sentinels:
                cached = tuple(Metric(m, None, _UNAVAILABLE) for _, m in pairs)
            else:
                cached = tuple(Metric(m, bool((u >> bit) & 1)) for bit, m in pairs)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[u] = cached
        out.extend(cached)

    return decode


def _nibble_slots(wp: WirePoint) -> list[tuple[str, int, int]]:
    """(metric, register index, shift) per named alarm; the first alarm sits in the HIGH nibble
    (DSE GenComm page 8: "4 alarms per register, first alarm in bits 15-12")."""
    names = wp.point.nibble_names or []
    return [(f"alarm_{n}", i // 4, 12 - 4 * (i % 4)) for i, n in enumerate(names) if n is not None]


def _nibble_decoder(wp: WirePoint) -> Decoder:
    slots = _nibble_slots(wp)
    states = dict(wp.point.nibble_states)
    width, swap = wp.width, wp.byte_order == "little"
    # Per register: its named slots, and a cache raw register → the Metrics of its (up to) 4 alarms.
    per_reg: list[list[tuple[str, int]]] = [[] for _ in range(width)]
    for metric, idx, shift in slots:
        per_reg[idx].append((metric, shift))
    caches: list[dict[int, tuple[Metric, ...]]] = [{} for _ in range(width)]

    def build(reg_slots: list[tuple[str, int]], r: int) -> tuple[Metric, ...]:
        ms = []
        for metric, shift in reg_slots:
            n = (r >> shift) & 0xF
            state = states.get(n)
            ms.append(Metric(metric, state if state is not None else f"unknown_{n}"))
        return tuple(ms)

    def decode(d: RawData, o: int, out: list[Metric]) -> None:
        regs = d[o : o + width]
        if len(regs) != width:
            out.extend(Metric(m, None, _DECODE_ERROR) for m, _, _ in slots)
            return
        for i in range(width):
            r = int(regs[i])
            if swap:
                r = _swap(r)
            cache = caches[i]
            ms = cache.get(r)
            if ms is None:
                ms = build(per_reg[i], r)
                if len(cache) >= _CACHE_MAX:
                    cache.clear()
                cache[r] = ms
            out.extend(ms)

    return decode


def _string_decoder(wp: WirePoint) -> Decoder:
    name, width, swap = wp.point.name, wp.width, wp.byte_order == "little"

    def decode(d: RawData, o: int, out: list[Metric]) -> None:
        regs = [int(x) for x in d[o : o + width]]
        if len(regs) != width:
            out.append(Metric(name, None, _DECODE_ERROR))
            return
        # 2 characters per register, high byte first (InRow/APC maps); some devices swap them.
        raw = b"".join((_swap(r) if swap else r).to_bytes(2, "big") for r in regs)
        try:
            text = raw.split(b"\x00", 1)[0].decode("utf-8").strip()
        except UnicodeDecodeError:
            out.append(Metric(name, None, _DECODE_ERROR))
            return
        out.append(Metric(name, text))

    return decode


def decode_point(wp: WirePoint, data: RawData, offset: int = 0) -> list[Metric]:
    """Decode one point from `data` starting at `offset` (convenience; hot paths compile once)."""
    out: list[Metric] = []
    compile_decoder(wp)(data, offset, out)
    return out


# ---------------------------------------------------------------------------------------------- encode


def _words(u: int, width: int, word_order: str, byte_order: str) -> list[int]:
    """Unsigned integer → `width` registers in the device's order (inverse of `_unsigned_reader`)."""
    regs = [(u >> (16 * (width - 1 - i))) & 0xFFFF for i in range(width)]
    if word_order == "little":
        regs.reverse()
    if byte_order == "little":
        regs = [_swap(r) for r in regs]
    return regs


def encode_point(wp: WirePoint, value: Value | Mapping[str, Value]) -> list[int] | list[bool]:
    """Engineering value → registers (or bits) the device would hold; the simulator's encoder.

    bitfield/nibbles take a mapping metric → value (missing bits False, missing alarms the
    point's `example` state or else `not_active`); ``None`` encodes the point's first sentinel.
    """
    p = wp.point
    t = p.type
    if t == "bool" and p.enum is not None and not isinstance(value, Mapping):
        value = bool(p.invert(value))  # a state name → its bit
    if wp.table in ("coil", "discrete"):
        return [bool(value)]
    if t == "bool":
        return [1 if value else 0]
    if t == "string":
        data = str(value or "").encode("utf-8")
        if len(data) > 2 * wp.width:
            raise ValueError(f"{p.name}: {value!r} longer than {2 * wp.width} bytes")
        data = data.ljust(2 * wp.width, b"\x00")
        return [_swap(r) if wp.byte_order == "little" else r for r in struct.unpack(f">{wp.width}H", data)]
    if t == "nibbles":
        return _encode_nibbles(wp, value)
    mask = (1 << (16 * wp.width)) - 1
    if value is None:
        if not p.sentinels:
            raise ValueError(f"{p.name}: None needs a sentinel and the point has none")
        return _words(p.sentinels[0] & mask, wp.width, wp.word_order, wp.byte_order)
    if t == "bitfield":
        bits = p.bits or {}
        if isinstance(value, Mapping):
            u = sum(1 << bit for bit, m in bits.items() if value.get(m))
        elif isinstance(value, int):
            u = value  # a raw pattern
        else:
            raise ValueError(f"{p.name}: bitfield needs {{metric: bool}} or a raw int, got {value!r}")
        return _words(u & mask, wp.width, wp.word_order, wp.byte_order)
    if isinstance(value, Mapping):
        raise ValueError(f"{p.name}: a {t} point takes one value, not a mapping")
    # Transform.invert works in float, which loses 64-bit integers beyond 2**53: pass ints through.
    raw: int | float = value if p.is_identity and p.enum is None and type(value) is int else p.invert(value)
    fmt = _FLOAT.get(t)
    if p.mask is not None:
        u = _field_bits(p.name, round(raw), p.mask, p.mask_shift)
    elif fmt is not None:
        u = int.from_bytes(struct.pack(fmt, float(raw)), "big")
    else:
        n = round(raw)
        nbits = 16 * TYPE_WIDTH[t]
        lo, hi = (-(1 << (nbits - 1)), (1 << (nbits - 1)) - 1) if t in _SIGNED else (0, (1 << nbits) - 1)
        if not lo <= n <= hi:
            raise ValueError(f"{p.name}: {value!r} → raw {n} does not fit {t} ({lo}..{hi})")
        u = n & mask
    return _words(u, wp.width, wp.word_order, wp.byte_order)


def _field_bits(name: str, n: int, mask: int, shift: int) -> int:
    """A bit field's value placed at its bits; the other fields of the register stay 0 (ORed in later)."""
    top = mask >> shift
    if not 0 <= n <= top:
        raise ValueError(f"{name}: raw {n} does not fit the bit field {mask:#x} (0..{top})")
    return n << shift


def _encode_nibbles(wp: WirePoint, value: Value | Mapping[str, Value]) -> list[int]:
    p = wp.point
    codes: dict[str, int] = {}
    for nibble, state in sorted(p.nibble_states.items(), reverse=True):
        codes[state] = nibble  # lowest code wins for states with two codes (8/9 inactive_indication)
    default_state = p.example if isinstance(p.example, str) else "not_active"
    default = codes.get(default_state, 0)
    given = value if isinstance(value, Mapping) else {}
    regs = [0] * wp.width
    for metric, idx, shift in _nibble_slots(wp):
        given_state = given.get(metric)
        code: int | None = default if given_state is None else codes.get(str(given_state))
        if code is None:
            raise ValueError(f"{metric}: {given_state!r} is not one of {sorted(codes)}")
        regs[idx] |= code << shift
    return [_swap(r) for r in regs] if wp.byte_order == "little" else regs
