#!/usr/bin/env python3
"""Independent reference implementation of `slawatch replay`.

Written only from SPEC.md (the product contract) and docs/SEMANTICS.md, to cross-check the Rust
engine. It favours obviously-correct brute force over speed.

    python3 slaref.py --config FILE --input FILE [--until RFC3339] [--dead-letter FILE]

All instants are integers: milliseconds since 1970-01-01T00:00:00Z (UTC).
"""

import argparse
import base64
import datetime as dt
import json
import math
import re
import sys
import tomllib
from zoneinfo import ZoneInfo

MS_MIN = 60_000
MS_HOUR = 3_600_000
MS_DAY = 86_400_000
# Supported instants: 1970-01-01 .. 2099-12-31 (UTC).
MIN_INSTANT = 0
LIMIT = 4102444800000  # 2100-01-01T00:00:00Z; a deadline at or after it is "no deadline"

CLOCKS = ["first_response", "next_response", "resolution"]
KIND_ORDER = {"warning": 0, "breach": 1, "escalation": 2}
PRIORITIES = ["urgent", "high", "normal", "low"]
CHANNELS = ["email", "phone", "chat", "social", "web", "other"]
KINDS = ["request", "complaint"]
STATUSES = ["new", "open", "pending", "on_hold", "solved", "closed"]
OPENED_BY = ["customer", "agent"]
AUTHORS = ["agent", "customer"]
TYPES = ["ticket.created", "ticket.updated", "ticket.status_changed", "reply.sent",
         "complaint.resolved", "satisfaction.rated"]
DEFAULT_PAUSE = ["pending", "on_hold"]
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


# ---------------------------------------------------------------------------------------------
# Small helpers: durations, timestamps
# ---------------------------------------------------------------------------------------------

def parse_duration(text):
    m = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not m or text == "":
        raise ValueError(f"bad duration {text!r}")
    d, h, mi, s = (int(x) if x else 0 for x in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60_000 + s * 1000


RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def parse_rfc3339(text):
    """Return UTC milliseconds (fraction truncated), or None if not valid/supported."""
    if not isinstance(text, str):
        return None
    m = RFC3339.fullmatch(text)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    frac, off = m.group(7), m.group(8)
    if s >= 60 or h > 23 or mi > 59:  # leap seconds are rejected
        return None
    try:
        naive = dt.datetime(y, mo, d, h, mi, s, tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    ms = int(naive.timestamp()) * 1000
    if frac:
        ms += int((frac[1:] + "000")[:3])
    if off not in ("Z", "z"):
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        sign = 1 if off[0] == "+" else -1
        ms -= sign * (oh * 60 + om) * MS_MIN
    if ms < MIN_INSTANT or ms >= LIMIT:
        return None
    return ms


def fmt_time(ms):
    if ms is None:
        return None
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def date_to_naive_ms(date):
    """Milliseconds of local midnight of `date` as if it were UTC (a 'naive' wall clock)."""
    return (date - dt.date(1970, 1, 1)).days * MS_DAY


# ---------------------------------------------------------------------------------------------
# Calendars and business time
# ---------------------------------------------------------------------------------------------

class Calendar:
    """Business time of one calendar. `None` zone means the built-in 24x7."""

    def __init__(self, name, timezone=None, holidays=(), hours=None):
        self.name = name
        self.zone = ZoneInfo(timezone) if timezone else None
        self.holidays = {dt.date.fromisoformat(h) for h in holidays}
        self.hours = {}  # weekday index -> [(start_ms, end_ms)] since local midnight
        for key, windows in (hours or {}).items():
            parsed = []
            for w in windows:
                a, b = w.split("-")
                parsed.append((self._clock(a), self._clock(b)))
            self.hours[WEEKDAYS.index(key)] = sorted(parsed)
        self._day_cache = {}

    @staticmethod
    def _clock(text):
        parts = [int(x) for x in text.split(":")]
        h, m = parts[0], parts[1]
        s = parts[2] if len(parts) > 2 else 0
        return (h * 3600 + m * 60 + s) * 1000

    def _offset(self, utc_ms):
        """UTC offset (ms) of the zone at instant utc_ms."""
        t = dt.datetime.fromtimestamp(utc_ms // 1000, tz=self.zone)
        return int(t.utcoffset().total_seconds()) * 1000

    def _segments(self, lo, hi):
        """[(start, end, offset)] covering [lo, hi) with a constant UTC offset in each."""
        step = 30 * MS_MIN
        points = list(range(lo, hi, step)) + [hi]
        segs = []
        seg_start = lo
        cur = self._offset(lo)
        for a, b in zip(points, points[1:]):
            ob = self._offset(b)
            if ob != cur:
                # binary search (whole seconds) for the first instant with the new offset
                x, y = a // 1000, b // 1000  # offset(x) == cur, offset(y) != cur
                while y - x > 1:
                    mid = (x + y) // 2
                    if self._offset(mid * 1000) == cur:
                        x = mid
                    else:
                        y = mid
                segs.append((seg_start, y * 1000, cur))
                seg_start, cur = y * 1000, self._offset(y * 1000)
        segs.append((seg_start, hi, cur))
        return segs

    def day_intervals(self, date):
        """Sorted UTC intervals [a, b) of business time whose local date is `date`."""
        if date in self._day_cache:
            return self._day_cache[date]
        out = []
        windows = self.hours.get(date.weekday(), [])
        if date not in self.holidays and windows:
            base = date_to_naive_ms(date)
            segs = self._segments(base - 26 * MS_HOUR, base + MS_DAY + 26 * MS_HOUR)
            for (s, e) in windows:
                for (x, y, off) in segs:
                    # local wall time = utc + off; we want local in [base+s, base+e)
                    lo = max(x, base + s - off)
                    hi = min(y, base + e - off)
                    if lo < hi:
                        out.append((lo, hi))
        out.sort()
        self._day_cache[date] = out
        return out

    def intervals_from(self, t0):
        """Business intervals (clipped to start at >= t0) in time order, up to LIMIT."""
        if self.zone is None:
            if t0 < LIMIT:
                yield (t0, LIMIT)
            return
        date = (dt.datetime.fromtimestamp(t0 // 1000, tz=self.zone).date()
                - dt.timedelta(days=1))
        while date_to_naive_ms(date) - 2 * MS_DAY < LIMIT:
            for (a, b) in self.day_intervals(date):
                if b <= t0:
                    continue
                if a >= LIMIT:
                    return
                yield (max(a, t0), min(b, LIMIT))
            date += dt.timedelta(days=1)


def counting_intervals(cal, start, pauses):
    """Business intervals from `start` minus the paused intervals, in time order.

    pauses: list of [pause_start, pause_end or None (still paused)], in time order."""
    open_pause = None
    for (ps, pe) in pauses:
        if pe is None:
            open_pause = ps
    for (a, b) in cal.intervals_from(start):
        if open_pause is not None and a >= open_pause:
            return
        cur = a
        for (ps, pe) in pauses:
            pe_eff = LIMIT if pe is None else pe
            if pe_eff <= cur or ps >= b:
                continue
            if ps > cur:
                yield (cur, ps)
            cur = max(cur, pe_eff)
            if cur >= b:
                break
        if cur < b:
            yield (cur, b)
        if open_pause is not None and b >= open_pause:
            return


def elapsed_at(cal, start, pauses, t):
    """Business time between start and t, minus paused business time."""
    if t <= start:
        return 0
    total = 0
    for (a, b) in counting_intervals(cal, start, pauses):
        if a >= t:
            break
        total += min(b, t) - a
    return total


def reach(cal, start, pauses, threshold):
    """Earliest instant at which the elapsed time equals `threshold`; None if never (paused
    for good, or after 2099)."""
    if threshold <= 0:
        return start
    acc = 0
    for (a, b) in counting_intervals(cal, start, pauses):
        if acc + (b - a) >= threshold:
            t = a + (threshold - acc)
            return t if t < LIMIT else None
        acc += b - a
    return None


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

class Policy:
    def __init__(self, raw, calendars):
        self.name = raw["name"]
        self.calendar = calendars[raw.get("calendar", "24x7")]
        self.pause_statuses = list(raw.get("pause_statuses", DEFAULT_PAUSE))
        self.warn_at = list(raw.get("warn_at", []))
        self.escalate_after = [parse_duration(x) for x in raw.get("escalate_after", [])]
        self.match = raw.get("match", {})
        self.targets = {}
        for clock, per_prio in raw.get("targets", {}).items():
            self.targets[clock] = {p: parse_duration(v) for p, v in per_prio.items()}

    def matches(self, tk):
        m = self.match
        for key in ("priority", "channel", "kind", "group", "customer_tier"):
            if key in m and getattr(tk, key) not in m[key]:
                return False
        if "tags_any" in m and not (set(m["tags_any"]) & set(tk.tags)):
            return False
        return True

    def target(self, clock, priority):
        return self.targets.get(clock, {}).get(priority)


class Config:
    def __init__(self, path):
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        eng = raw.get("engine", {})
        self.allowed_lateness = parse_duration(eng.get("allowed_lateness", "0s"))
        self.orphan_hold = parse_duration(eng.get("orphan_hold", "1m"))
        self.max_orphans = int(eng.get("max_orphans", 100_000))
        self.max_tickets = int(eng.get("max_tickets", 10_000_000))
        self.max_event_bytes = int(eng.get("max_event_bytes", 65536))
        self.ticket_retention = parse_duration(eng.get("ticket_retention", "7d"))
        self.calendars = {"24x7": Calendar("24x7")}
        for c in raw.get("calendar", []):
            self.calendars[c["name"]] = Calendar(c["name"], c["timezone"],
                                                 c.get("holidays", []), c.get("hours", {}))
        self.policies = [Policy(p, self.calendars) for p in raw.get("policy", [])]

    def policy_for(self, tk):
        for p in self.policies:
            if p.matches(tk):
                return p
        return None


# ---------------------------------------------------------------------------------------------
# Input validation
# ---------------------------------------------------------------------------------------------

class Reject(Exception):
    def __init__(self, reason, detail):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


# Fields slawatch reads; a key repeated among these is invalid_json (docs/SEMANTICS.md), other
# repeated keys are ignored like any unknown field.
READ_FIELDS = {"type", "ticket_id", "occurred_at", "event_id", "priority", "channel", "kind", "status",
               "opened_by", "group", "customer_tier", "tags", "author", "public", "resolution",
               "agent", "score", "comment"}


class _Obj(dict):
    dup_keys = frozenset()


def _no_dup_keys(pairs):
    obj = _Obj()
    dups = set()
    for k, v in pairs:
        if k in obj:
            dups.add(k)
        obj[k] = v
    obj.dup_keys = frozenset(dups)
    return obj


def _bad_constant(name):
    raise Reject("invalid_json", f"invalid JSON value {name}")


def blen(s):
    return len(s.encode("utf-8"))


class Event:
    pass


def get(obj, key):
    """A field's value, with null counting as absent (None)."""
    return obj.get(key)


def req_enum(obj, key, allowed):
    v = get(obj, key)
    if v is None:
        raise Reject("missing_field", f"{key} is required")
    return check_enum(key, v, allowed)


def check_enum(key, v, allowed):
    if not isinstance(v, str) or v not in allowed:
        raise Reject("invalid_field", f"{key}: {v!r} is not one of {', '.join(allowed)}")
    return v


def check_str(key, v, max_bytes):
    if not isinstance(v, str) or blen(v) > max_bytes:
        raise Reject("invalid_field", f"{key}: must be a string of at most {max_bytes} bytes")
    return v


def check_tags(v):
    if not isinstance(v, list) or len(v) > 32:
        raise Reject("invalid_field", "tags: must be a list of at most 32 strings")
    for t in v:
        check_str("tags", t, 64)
    return list(v)


def parse_event(raw_bytes, cfg):
    if len(raw_bytes) > cfg.max_event_bytes:
        raise Reject("too_large", f"{len(raw_bytes)} bytes exceeds {cfg.max_event_bytes}")
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise Reject("invalid_json", "not UTF-8")
    try:
        obj = json.loads(text, object_pairs_hook=_no_dup_keys, parse_constant=_bad_constant)
    except json.JSONDecodeError as e:
        raise Reject("invalid_json", str(e))
    if not isinstance(obj, dict):
        raise Reject("invalid_json", "expected a JSON object")
    if obj.dup_keys & READ_FIELDS:
        raise Reject("invalid_json", f"duplicate key {sorted(obj.dup_keys & READ_FIELDS)[0]!r}")

    ev = Event()
    typ = get(obj, "type")
    if typ is None:
        raise Reject("missing_field", "type is required")
    if not isinstance(typ, str):
        raise Reject("invalid_field", "type must be a string")
    if typ not in TYPES:
        raise Reject("unknown_type", f"unknown event type {typ!r}")
    ev.type = typ

    tid = get(obj, "ticket_id")
    if tid is None:
        raise Reject("missing_field", "ticket_id is required")
    if not isinstance(tid, str) or not (1 <= blen(tid) <= 128):
        raise Reject("invalid_field", "ticket_id must be a string of 1-128 bytes")
    ev.ticket_id = tid

    occ = get(obj, "occurred_at")
    if occ is None:
        raise Reject("missing_field", "occurred_at is required")
    ev.occ = parse_rfc3339(occ)
    if ev.occ is None:
        raise Reject("invalid_field", f"occurred_at: {occ!r} is not RFC 3339 with an offset")

    eid = get(obj, "event_id")
    if eid is not None:
        check_str("event_id", eid, 128)
    ev.event_id = eid

    if typ == "ticket.created":
        ev.priority = req_enum(obj, "priority", PRIORITIES)
        ev.channel = req_enum(obj, "channel", CHANNELS)
        v = get(obj, "kind")
        ev.kind = "request" if v is None else check_enum("kind", v, KINDS)
        v = get(obj, "status")
        ev.status = "new" if v is None else check_enum("status", v, STATUSES)
        v = get(obj, "opened_by")
        ev.opened_by = "customer" if v is None else check_enum("opened_by", v, OPENED_BY)
        v = get(obj, "group")
        ev.group = None if v is None else check_str("group", v, 64)
        v = get(obj, "customer_tier")
        ev.customer_tier = None if v is None else check_str("customer_tier", v, 32)
        v = get(obj, "tags")
        ev.tags = [] if v is None else check_tags(v)
    elif typ == "ticket.updated":
        ev.changes = {}
        for key, allowed in (("priority", PRIORITIES), ("channel", CHANNELS), ("kind", KINDS)):
            v = get(obj, key)
            if v is not None:
                ev.changes[key] = check_enum(key, v, allowed)
        for key, limit in (("group", 64), ("customer_tier", 32)):
            if key in obj:  # explicit null clears the attribute
                v = obj[key]
                ev.changes[key] = None if v is None else check_str(key, v, limit)
        v = get(obj, "tags")
        if v is not None:
            ev.changes["tags"] = check_tags(v)
        if not ev.changes:
            raise Reject("missing_field",
                         "ticket.updated needs one of priority, channel, kind, group, "
                         "customer_tier, tags")
    elif typ == "ticket.status_changed":
        ev.status = req_enum(obj, "status", STATUSES)
    elif typ == "reply.sent":
        ev.author = req_enum(obj, "author", AUTHORS)
        v = get(obj, "public")
        if v is None:
            v = True
        if not isinstance(v, bool):
            raise Reject("invalid_field", "public must be a boolean")
        ev.public = v
        v = get(obj, "agent")
        if v is not None:
            check_str("agent", v, 64)
    elif typ == "satisfaction.rated":
        v = get(obj, "score")
        if v is None:
            raise Reject("missing_field", "score is required")
        if type(v) is not int or not 1 <= v <= 5:
            raise Reject("invalid_field", "score must be an integer from 1 to 5")
        v = get(obj, "comment")
        if v is not None:
            check_str("comment", v, 4096)
    elif typ == "complaint.resolved":
        v = get(obj, "resolution")
        if v is not None and not isinstance(v, str):
            raise Reject("invalid_field", "resolution must be a string")
    return ev


# ---------------------------------------------------------------------------------------------
# Tickets, cycles and the engine
# ---------------------------------------------------------------------------------------------

class Cycle:
    def __init__(self, clock, number, start):
        self.clock = clock
        self.number = number
        self.start = start
        self.pauses = []          # [start, end or None]
        self.ended = False
        self.done_fractions = set()
        self.done_levels = set()
        self.skipped = set()      # (kind, fraction/level) placed below the frontier by the last re-evaluation
        self.breach_emitted = False
        self.retracted = False
        self.target = None        # under the ticket's current policy
        self.deadline = None
        self.alerts = []          # [(instant or None, kind, fraction/level, threshold)]

    def paused(self):
        return bool(self.pauses) and self.pauses[-1][1] is None


class Ticket:
    def __init__(self, tid, ev):
        self.id = tid
        self.priority = ev.priority
        self.channel = ev.channel
        self.kind = ev.kind
        self.group = ev.group
        self.customer_tier = ev.customer_tier
        self.tags = list(ev.tags)
        self.opened_by = ev.opened_by
        self.status = "new"
        self.time = ev.occ         # latest time applied to the ticket
        self.policy = None
        self.had_agent_reply = ev.opened_by == "agent"
        self.recent_ids = []       # last four event ids
        self.cycles = {c: None for c in CLOCKS}  # the latest cycle of each clock
        self.counts = {c: 0 for c in CLOCKS}

    def running(self, clock):
        c = self.cycles[clock]
        return c if (c is not None and not c.ended) else None


class Engine:
    def __init__(self, cfg, out):
        self.cfg = cfg
        self.out = out            # callable(dict) for SLA events
        self.dead = []            # dead letters (dicts)
        self.F = None             # frontier
        self.max_occ = None
        self.tickets = {}
        self.orphans = []         # [(arrival frontier, line, raw bytes, event)] in arrival order
        self.running = {}         # id(cycle) -> (ticket, cycle) for every running cycle

    # ---- dead letters ------------------------------------------------------------------------

    def dead_letter(self, reason, detail, line, raw):
        d = {"reason": reason, "detail": detail, "source": {"line": line}}
        try:
            d["raw"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            d["raw_base64"] = base64.b64encode(raw).decode("ascii")
        self.dead.append(d)

    # ---- policy, targets and alert instants --------------------------------------------------

    def pause_set(self, tk):
        return tk.policy.pause_statuses if tk.policy else DEFAULT_PAUSE

    def calendar(self, tk):
        return tk.policy.calendar if tk.policy else self.cfg.calendars["24x7"]

    def recompute(self, tk, cyc):
        """Target, deadline and alert instants of a cycle under the ticket's current policy."""
        pol = tk.policy
        cyc.target = pol.target(cyc.clock, tk.priority) if pol else None
        cyc.alerts = []
        cyc.deadline = None
        if cyc.target is None:
            return
        cal = pol.calendar

        def at(threshold):
            return reach(cal, cyc.start, cyc.pauses, threshold)

        cyc.deadline = at(cyc.target)
        for f in pol.warn_at:
            th = math.floor(f * cyc.target)
            cyc.alerts.append((at(th), "warning", f, th))
        cyc.alerts.append((cyc.deadline, "breach", 0, cyc.target))
        for i, e in enumerate(pol.escalate_after):
            th = cyc.target + e
            cyc.alerts.append((at(th), "escalation", i + 1, th))

    def is_done(self, cyc, kind, level):
        if kind == "warning":
            return level in cyc.done_fractions
        if kind == "breach":
            return cyc.breach_emitted
        return level in cyc.done_levels

    def mark_done(self, cyc, kind, level):
        if kind == "warning":
            cyc.done_fractions.add(level)
        elif kind == "breach":
            cyc.breach_emitted = True
        else:
            cyc.done_levels.add(level)

    def pending_alerts(self, tk, cyc, before):
        """This cycle's alerts with instant < before, neither emitted nor skipped."""
        if cyc.ended or cyc.target is None:
            return []
        res = []
        for (inst, kind, level, th) in cyc.alerts:
            if (inst is not None and inst < before and not self.is_done(cyc, kind, level)
                    and (kind, level) not in cyc.skipped):
                key = (inst, tk.id, CLOCKS.index(cyc.clock), cyc.number, KIND_ORDER[kind], level)
                res.append((key, tk, cyc, kind, level, th))
        return res

    def emit_alerts(self, items):
        for (key, tk, cyc, kind, level, th) in sorted(items, key=lambda x: x[0]):
            if self.is_done(cyc, kind, level):
                continue
            self.mark_done(cyc, kind, level)
            inst = key[0]
            if kind == "warning":
                self.emit("warning", tk, cyc, inst, th, {"fraction": level}, level)
            elif kind == "breach":
                self.emit("breached", tk, cyc, inst, th, {})
            else:
                self.emit("escalated", tk, cyc, inst, th, {"level": level}, level)

    def emit_due(self):
        """Every alert due before the frontier, in the contract's order."""
        if self.F is None:
            return
        items = []
        for (tk, cyc) in self.running.values():
            items += self.pending_alerts(tk, cyc, self.F)
        self.emit_alerts(items)

    def emit(self, typ, tk, cyc, at, elapsed, extra, level=None):
        suffix = f":{json.dumps(level)}" if level is not None else ""
        rec = {
            "type": "sla." + typ,
            "id": f"{typ}:{cyc.clock}:{cyc.number}{suffix}:{tk.id}",
            "ticket_id": tk.id,
            "clock": cyc.clock,
            "cycle": cyc.number,
            "policy": tk.policy.name,
            "priority": tk.priority,
            "channel": tk.channel,
            "kind": tk.kind,
            "group": tk.group,
            "started_at": fmt_time(cyc.start),
            "deadline": fmt_time(cyc.deadline),
            "target_ms": cyc.target,
            "at": fmt_time(at),
            "elapsed_ms": elapsed,
        }
        rec.update(extra)
        self.out(rec)

    # ---- cycle life ----------------------------------------------------------------------------

    def start_cycle(self, tk, clock, t):
        tk.counts[clock] = min(tk.counts[clock] + 1, 65535)
        cyc = Cycle(clock, tk.counts[clock], t)
        if clock == "resolution" and tk.status in self.pause_set(tk):
            cyc.pauses.append([t, None])
        tk.cycles[clock] = cyc
        self.running[id(cyc)] = (tk, cyc)
        self.recompute(tk, cyc)

    def sync_pause(self, tk, t):
        """Pause or resume the running resolution cycle according to status and policy."""
        cyc = tk.running("resolution")
        if cyc is None:
            return
        should = tk.status in self.pause_set(tk)
        if should and not cyc.paused():
            cyc.pauses.append([t, None])
        elif not should and cyc.paused():
            cyc.pauses[-1][1] = t
        else:
            return
        self.recompute(tk, cyc)

    def end_cycle(self, tk, cyc, how, f, late):
        """Fulfil (how='fulfilled') or cancel (how='cancelled') a running cycle at instant f."""
        if cyc.target is not None:
            self.emit_alerts(self.pending_alerts(tk, cyc, f))
            elapsed = elapsed_at(self.calendar(tk), cyc.start, cyc.pauses, f)
            if how == "fulfilled":
                if (late and cyc.breach_emitted and not cyc.retracted
                        and cyc.deadline is not None and f <= cyc.deadline):
                    cyc.retracted = True
                    self.emit("breach_retracted", tk, cyc, f, elapsed, {})
                outcome = "breached" if (cyc.breach_emitted and not cyc.retracted) else "met"
                self.emit("fulfilled", tk, cyc, f, elapsed, {"outcome": outcome})
            else:
                self.emit("cancelled", tk, cyc, f, elapsed, {})
        cyc.ended = True
        del self.running[id(cyc)]

    # ---- the engine loop ---------------------------------------------------------------------

    def advance(self, occ):
        self.max_occ = occ if self.max_occ is None else max(self.max_occ, occ)
        self.set_frontier(occ - self.cfg.allowed_lateness)

    def set_frontier(self, value):
        self.F = value if self.F is None else max(self.F, value)
        # orphans past their hold
        keep = []
        for o in self.orphans:
            if self.F > o[0] + self.cfg.orphan_hold:
                self.dead_letter("unknown_ticket", "no ticket.created within orphan_hold",
                                 o[1], o[2])
            else:
                keep.append(o)
        self.orphans = keep
        self.emit_due()

    def expired(self, tk):
        """Solved and closed tickets are forgotten ticket_retention after their last event.
        (Checked lazily, when the ticket is looked up: the effect is the same.)"""
        return (tk.status in ("solved", "closed")
                and self.F > tk.time + self.cfg.ticket_retention)

    def forget_expired(self):
        for tid in [tid for tid, tk in self.tickets.items() if self.expired(tk)]:
            del self.tickets[tid]

    def handle(self, ev, line, raw):
        self.advance(ev.occ)
        tk = self.tickets.get(ev.ticket_id)
        if tk is not None and self.expired(tk):
            del self.tickets[ev.ticket_id]
            tk = None
        if tk is None:
            if ev.type == "ticket.created":
                if len(self.tickets) >= self.cfg.max_tickets:
                    self.forget_expired()
                if len(self.tickets) >= self.cfg.max_tickets:
                    self.dead_letter("capacity", "open-ticket limit reached", line, raw)
                else:
                    self.create(ev)
                    held = [o for o in self.orphans if o[3].ticket_id == ev.ticket_id]
                    self.orphans = [o for o in self.orphans if o[3].ticket_id != ev.ticket_id]
                    for o in held:
                        self.apply(self.tickets[ev.ticket_id], o[3], o[1], o[2])
            elif len(self.orphans) >= self.cfg.max_orphans:
                self.dead_letter("unknown_ticket", "orphan buffer full", line, raw)
            else:
                self.orphans.append((self.F, line, raw, ev))
        else:
            self.apply(tk, ev, line, raw)
        self.emit_due()

    def finish(self, until):
        target = until if until is not None else self.max_occ
        if target is not None:
            self.set_frontier(target)
        for o in self.orphans:
            self.dead_letter("unknown_ticket", "ticket never created", o[1], o[2])
        self.orphans = []

    def create(self, ev):
        tk = Ticket(ev.ticket_id, ev)
        self.tickets[tk.id] = tk
        if ev.event_id is not None:
            tk.recent_ids.append(ev.event_id)
        tk.policy = self.cfg.policy_for(tk)
        t = ev.occ
        if ev.opened_by != "agent":
            self.start_cycle(tk, "first_response", t)
        self.start_cycle(tk, "resolution", t)
        if ev.status != "new":
            self.change_status(tk, ev.status, t, ev.occ, ev.occ < self.F)

    def apply(self, tk, ev, line, raw):
        if ev.event_id is not None:
            if ev.event_id in tk.recent_ids:
                return  # duplicate: ignored
        if ev.type == "ticket.created":
            self.dead_letter("duplicate_ticket", f"ticket {tk.id!r} already exists", line, raw)
            return
        if ev.event_id is not None:
            tk.recent_ids = (tk.recent_ids + [ev.event_id])[-4:]
        if ev.type == "satisfaction.rated":
            return  # changes no clock, whatever the status (not the ticket's last event either)
        if tk.status == "closed":
            return  # closed is final: ignored
        late = ev.occ < self.F
        t = max(ev.occ, tk.time)
        tk.time = t
        if ev.type == "ticket.updated":
            self.update(tk, ev.changes, t)
        elif ev.type == "ticket.status_changed":
            self.change_status(tk, ev.status, t, ev.occ, late)
        elif ev.type == "complaint.resolved":
            self.change_status(tk, "solved", t, ev.occ, late)
        elif ev.type == "reply.sent":
            self.reply(tk, ev, t, late)

    def end_time(self, cyc, t, occ, late):
        return max(occ, cyc.start) if late else t

    def change_status(self, tk, new, t, occ, late):
        old = tk.status
        if new == old:
            return
        if new in ("solved", "closed"):
            # first every clock's alerts due before its end, in instant order (SEMANTICS.md)
            items = []
            for clock in CLOCKS:
                cyc = tk.running(clock)
                if cyc is not None and cyc.target is not None:
                    items += self.pending_alerts(tk, cyc, self.end_time(cyc, t, occ, late))
            self.emit_alerts(items)
            tk.status = new
            for clock in ("first_response", "next_response"):
                cyc = tk.running(clock)
                if cyc is not None:
                    self.end_cycle(tk, cyc, "cancelled", self.end_time(cyc, t, occ, late), late)
            cyc = tk.running("resolution")
            if cyc is not None:
                self.end_cycle(tk, cyc, "fulfilled", self.end_time(cyc, t, occ, late), late)
        elif old == "solved":
            tk.status = new  # reopen
            self.start_cycle(tk, "resolution", t)
        else:
            tk.status = new
            self.sync_pause(tk, t)

    def reply(self, tk, ev, t, late):
        if not ev.public:
            return
        if ev.author == "agent":
            tk.had_agent_reply = True
            for clock in ("first_response", "next_response"):
                cyc = tk.running(clock)
                if cyc is not None:
                    self.end_cycle(tk, cyc, "fulfilled",
                                   self.end_time(cyc, t, ev.occ, late), late)
        else:
            if tk.status == "solved":
                tk.status = "open"  # reopen
                self.start_cycle(tk, "resolution", t)
            if tk.had_agent_reply and tk.running("next_response") is None:
                self.start_cycle(tk, "next_response", t)

    def update(self, tk, changes, t):
        # alerts due before the ticket time are emitted under the old policy
        items = []
        for clock in CLOCKS:
            cyc = tk.running(clock)
            if cyc is not None:
                items += self.pending_alerts(tk, cyc, t)
        self.emit_alerts(items)
        for key, v in changes.items():
            setattr(tk, key, v)
        tk.policy = self.cfg.policy_for(tk)
        for clock in CLOCKS:
            cyc = tk.running(clock)
            if cyc is None:
                continue
            if clock == "resolution":
                should = tk.status in self.pause_set(tk)
                if should and not cyc.paused():
                    cyc.pauses.append([t, None])
                elif not should and cyc.paused():
                    cyc.pauses[-1][1] = t
            self.recompute(tk, cyc)
            if cyc.target is None:
                continue
            # Skipped until the next re-evaluation: one that puts it above the frontier again
            # makes it due again, as long as it was never emitted.
            cyc.skipped = {(kind, level) for (inst, kind, level, th) in cyc.alerts
                           if kind != "breach" and inst is not None and inst < self.F
                           and not self.is_done(cyc, kind, level)}
            if (not cyc.breach_emitted and cyc.deadline is not None
                    and cyc.deadline < self.F):
                cyc.breach_emitted = True
                self.emit("breached", tk, cyc, cyc.deadline, cyc.target, {})


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--until")
    ap.add_argument("--dead-letter")
    args = ap.parse_args()

    cfg = Config(args.config)
    until = None
    if args.until:
        until = parse_rfc3339(args.until)
        if until is None:
            sys.exit(f"bad --until {args.until!r}")
    out = sys.stdout
    engine = Engine(cfg, lambda rec: out.write(json.dumps(rec, separators=(",", ":")) + "\n"))

    with open(args.input, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for lineno, raw in enumerate(lines, 1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]  # CRLF line endings: the CR belongs to the line terminator
        if raw.strip() == b"":
            continue
        try:
            ev = parse_event(raw, cfg)
        except Reject as r:
            engine.dead_letter(r.reason, r.detail, lineno, raw)
            continue
        engine.handle(ev, lineno, raw)
    engine.finish(until)

    if args.dead_letter:
        with open(args.dead_letter, "w", encoding="utf-8") as f:
            for d in engine.dead:
                f.write(json.dumps(d, separators=(",", ":")) + "\n")
    print(f"slaref: {len(lines)} lines, {len(engine.dead)} dead letters", file=sys.stderr)


if __name__ == "__main__":
    main()
