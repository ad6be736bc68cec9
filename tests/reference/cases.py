"""Random small configurations and event streams for comparing slawatch with slaref.py.

    python3 cases.py --seed S --count N --out DIR

writes DIR/<seed>/config.toml, DIR/<seed>/events.ndjson and DIR/<seed>/until (an RFC 3339
instant or empty) for seeds S .. S+N-1. Deterministic per seed. The streams are short (up to
six tickets, up to 60 events) but dense in what is easy to get wrong: business hours across a
daylight-saving change, pauses, reopens, priority and group changes that re-select policies,
late and out-of-order events, duplicates, orphans, retention and events after closing.
"""

import argparse
import datetime
import json
import os
import random

CALENDAR = '''
[[calendar]]
name = "office"
timezone = "Europe/Berlin"
holidays = ["2026-03-30"]
[calendar.hours]
mon = ["09:00-12:00", "13:00-17:00"]
tue = ["09:00-12:00", "13:00-17:00"]
wed = ["00:00-24:00"]
sat = ["01:30-03:30"]
sun = ["01:30-03:30", "22:00-24:00"]
'''
PRIORITIES = ["urgent", "high", "normal", "low"]


def config(r):
    s = (f'[engine]\nallowed_lateness = "{r.choice(["0s", "0s", "1m", "5m", "30m"])}"\n'
         f'orphan_hold = "{r.choice(["1m", "10m"])}"\nticket_retention = "{r.choice(["1h", "7d"])}"\n')
    s += CALENDAR
    for i in range(r.randint(1, 3)):
        s += f'\n[[policy]]\nname = "p{i}"\ncalendar = "{r.choice(["24x7", "office"])}"\n'
        s += f'pause_statuses = {json.dumps(r.sample(["pending", "on_hold", "open", "new"], r.randint(0, 2)))}\n'
        s += f'warn_at = {json.dumps(sorted(r.sample([0.1, 0.25, 0.5, 0.75, 0.9], r.randint(0, 3))))}\n'
        escalations = sorted(r.sample([1, 5, 10, 30, 60], r.randint(0, 2)))
        s += f'escalate_after = {json.dumps([f"{e}m" for e in escalations])}\n[policy.match]\n'
        if i < 2 and r.random() < 0.7:
            key, values = r.choice([("priority", ["high", "urgent"]), ("channel", ["chat"]), ("group", ["g1"]),
                                    ("tags_any", ["x"]), ("kind", ["complaint"])])
            s += f'{key} = {json.dumps(values)}\n'
        for clock in ["first_response", "next_response", "resolution"]:
            if r.random() < 0.85:
                s += f'[policy.targets.{clock}]\n'
                for p in PRIORITIES:
                    if r.random() < 0.8:
                        s += f'{p} = "{r.choice(["1m", "5m", "15m", "1h", "2h", "4h", "1h30m"])}"\n'
    return s


def rfc3339(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def created(r, ticket, ms, final_statuses):
    e = {"type": "ticket.created", "ticket_id": ticket, "occurred_at": rfc3339(ms),
         "priority": r.choice(PRIORITIES), "channel": r.choice(["chat", "email"])}
    if r.random() < 0.3:
        e["kind"] = "complaint"
    if r.random() < 0.25:
        e["status"] = r.choice(["open", "pending", "on_hold"] + final_statuses)
    if r.random() < 0.2:
        e["opened_by"] = "agent"
    if r.random() < 0.3:
        e["group"] = "g1"
    if r.random() < 0.3:
        e["tags"] = ["x"]
    return e


def events(r):
    # Around the 2026-03-29 change to summer time, or ordinary weeks later.
    t = 1774742400000 + r.choice([0, 86400000 * 7 * 30, 86400000 * 200]) + r.randint(0, 86400000 * 3)
    tickets = [f"T{i}" for i in range(r.randint(1, 6))]
    out = []
    for ticket in tickets:
        t += r.choice([0, 60000, 300000])
        out.append(created(r, ticket, t, []))
    for _ in range(r.randint(5, 60)):
        t += r.choice([0, 1000, 30000, 60000, 300000, 600000, 1800000, 3600000, 7200000])
        occurred = t - (r.choice([0, 0, 0, 60000, 240000, 600000, 3600000]) if r.random() < 0.5 else 0)
        kind = r.choices(["ticket.created", "ticket.updated", "ticket.status_changed", "reply.sent",
                          "complaint.resolved", "satisfaction.rated"], [1, 2, 4, 5, 1, 1])[0]
        ticket = r.choice(tickets + ["T9"])  # T9 never exists: an orphan
        if kind == "ticket.created":
            e = created(r, ticket, occurred, ["solved", "closed"])
        else:
            e = {"type": kind, "ticket_id": ticket, "occurred_at": rfc3339(occurred)}
        if kind == "ticket.updated":
            for key, values in [("priority", PRIORITIES), ("channel", ["chat", "email"]), ("group", ["g1", "g2", None]),
                                ("tags", [["x"], []]), ("kind", ["complaint", "request"])]:
                if r.random() < 0.35:
                    e[key] = r.choice(values)
            if len(e) == 3:
                e["priority"] = "high"
        elif kind == "ticket.status_changed":
            e["status"] = r.choice(["new", "open", "pending", "on_hold", "solved", "solved", "closed"])
        elif kind == "reply.sent":
            e["author"] = r.choice(["agent", "customer"])
            if r.random() < 0.15:
                e["public"] = False
            if r.random() < 0.3:
                e["agent"] = r.choice(["ana", "bo"])
        elif kind == "satisfaction.rated":
            e["score"] = r.choice([1, 2, 3, 4, 5, 5, 0, 4.0, "4", None])
            if r.random() < 0.3:
                e["comment"] = r.choice(["thanks", "x" * 4097])
        if r.random() < 0.3:
            e["event_id"] = f"e{r.randint(0, 15)}"
        out.append(e)
    return [json.dumps(e) for e in out]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    for seed in range(args.seed, args.seed + args.count):
        r = random.Random(seed)
        d = os.path.join(args.out, str(seed))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.toml"), "w") as f:
            f.write(config(r))
        with open(os.path.join(d, "events.ndjson"), "w") as f:
            f.write("\n".join(events(r)) + "\n")
        with open(os.path.join(d, "until"), "w") as f:
            f.write("" if r.random() < 0.5 else "2027-12-01T00:00:00Z")


if __name__ == "__main__":
    main()
