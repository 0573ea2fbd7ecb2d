"""Summaries (medians over repeats), the goal verdicts, and the Markdown tables."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from runner.servers import SERVERS

Record = dict[str, Any]
Row = dict[str, Any]

KIB = 1024
MIB = 1024 * 1024

# sessionstream defaults the slow-consumer bound is derived from (config.py).
MAILBOX_BYTES = 1_048_576
MAX_BATCH_BYTES = 262_144
UVLOOP_HIGH_WATER = 65_536


def med(values: Iterable[float | int | None]) -> float | None:
    xs = [float(v) for v in values if v is not None]
    return statistics.median(xs) if xs else None


def spread(values: Iterable[float | int | None]) -> tuple[float, float] | None:
    xs = [float(v) for v in values if v is not None]
    return (min(xs), max(xs)) if xs else None


def ok_records(records: list[Record], scenario: str) -> list[Record]:
    return [r for r in records if r.get("scenario") == scenario and "error" not in r]


def group(records: list[Record], *keys: str) -> dict[tuple[Any, ...], list[Record]]:
    out: dict[tuple[Any, ...], list[Record]] = defaultdict(list)
    for r in records:
        out[tuple(r.get(k) for k in keys)].append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(str(x) for x in kv[0])))


def order(key: str) -> int:
    return list(SERVERS).index(key) if key in SERVERS else 99


# -- fan-out -------------------------------------------------------------------------


def best_step(rec: Record) -> tuple[Record | None, Record | None]:
    """(highest passing step, first failing step) of one ladder."""
    steps = rec.get("steps", [])
    passing = [s for s in steps if not s["fails"]]
    failing = [s for s in steps if s["fails"]]
    # The limit is the first hard failure; p99-only misses the ladder climbed past are not.
    hard = [s for s in failing if s.get("hard_failure", True)]
    best = max(passing, key=lambda s: s["deliveries_per_s"]) if passing else None
    return best, (hard[0] if hard else (failing[-1] if failing else None))


def fanout_summary(records: list[Record]) -> list[Row]:
    rows: list[Row] = []
    for (key, transport, n), recs in group(
        ok_records(records, "fanout"), "server", "transport", "connections"
    ).items():
        per: list[Row] = []
        for rec in recs:
            best, fail = best_step(rec)
            final = rec.get("final", {})
            limit = "+".join(fail["fails"]) if fail else "ladder end"
            soft = sum(
                1
                for st in rec.get("steps", [])
                if st["fails"] and st is not fail and not st.get("hard_failure", True)
            )
            steps = rec.get("steps", [])
            lowest = min(steps, key=lambda st: st["rate"]) if steps else None
            if fail and fail.get("client_bound"):
                limit += " (loadgen busy)"
            if soft:
                limit += f" after {soft} p99-only miss{'es' if soft > 1 else ''}"
            points = {}
            for st in rec.get("points", []):
                points[str(int(st["point_deliveries_per_s"]))] = point_fields(st)
            at_s = rec.get("at_s_rate")
            per.append(
                {
                    "points": points,
                    "at_s": point_fields(at_s) if at_s else None,
                    "highest": best["deliveries_per_s"] if best else 0.0,
                    "rate": best["rate"] if best else None,
                    "p50_ms": best["latency_us"]["p50"] / 1000 if best else None,
                    "p99_ms": best["latency_us"]["p99"] / 1000 if best else None,
                    "cpu_us": best["server_cpu_us_per_delivery"] if best else None,
                    "core0_us": best.get("core0_us_per_delivery") if best else None,
                    "server_cpu_share": best["server_cpu_share"] if best else None,
                    "rss": best["server_rss_max"] if best else None,
                    "loadgen_cpu": best["loadgen_cpu_share"] if best else None,
                    "client_bound": bool(best and best["client_bound"]),
                    "limit": limit,
                    "next_p99_ms": fail["latency_us"]["p99"] / 1000 if fail else None,
                    "next_delivered": fail["delivered_share"] if fail else None,
                    "gaps": final.get("gaps", 0),
                    "duplicates": final.get("duplicates", 0),
                    "steps": len(steps),
                    # The latency floor: p99 at the lowest rate tried. With one write per
                    # client per event it is about N x the cost of one wake-and-send.
                    "floor_rate": lowest["offered_deliveries_per_s"] if lowest else None,
                    "floor_p99_ms": lowest["latency_us"]["p99"] / 1000 if lowest else None,
                    "repeat": rec["repeat"],
                }
            )
        highest = [p["highest"] for p in per]
        point_keys = sorted({d for p in per for d in p["points"]})
        rows.append(
            {
                "server": key,
                "transport": transport,
                "connections": n,
                "p99_limit_ms": recs[0].get("p99_limit_ms"),
                "repeats": len(per),
                "points": {d: med_fields([p["points"].get(d) for p in per]) for d in point_keys},
                "at_s": med_fields([p["at_s"] for p in per])
                if any(p["at_s"] for p in per)
                else None,
                "highest": med(highest),
                "highest_range": spread(highest),
                **{
                    k: med(p[k] for p in per)
                    for k in (
                        "p50_ms",
                        "p99_ms",
                        "cpu_us",
                        "core0_us",
                        "server_cpu_share",
                        "rss",
                        "loadgen_cpu",
                        "next_p99_ms",
                        "floor_rate",
                        "floor_p99_ms",
                    )
                },
                "client_bound": sum(p["client_bound"] for p in per),
                "limits": dict(Counter(p["limit"] for p in per)),
                "gaps": sum(p["gaps"] for p in per),
                "duplicates": sum(p["duplicates"] for p in per),
                "per_repeat": per,
            }
        )
    add_ratios(rows, "highest", ("transport", "connections"))
    add_ratios(rows, "highest", ("transport", "connections"), base_key="r")
    add_ratios(rows, "cpu_us", ("transport", "connections"))
    rows.sort(key=lambda r: (r["transport"], r["connections"], order(r["server"])))
    return rows


def point_fields(step: Record) -> Row:
    """The figures of one step outside the ladder."""
    return {
        "rate": step["rate"],
        "offered": step["offered_deliveries_per_s"],
        "deliveries_per_s": step["deliveries_per_s"],
        "delivered_share": step["delivered_share"],
        "p50_ms": step["latency_us"]["p50"] / 1000,
        "p99_ms": step["latency_us"]["p99"] / 1000,
        "cpu_us": step["server_cpu_us_per_delivery"],
        "core0_us": step.get("core0_us_per_delivery"),
        "server_cpu_share": step["server_cpu_share"],
        "loadgen_cpu": step["loadgen_cpu_share"],
        "closed_by_server": step["closed_by_server"],
    }


def med_fields(items: list[Row | None]) -> Row:
    """Medians of point_fields over the repeats that have them."""
    have = [i for i in items if i]
    if not have:
        return {}
    out: Row = {k: med(i.get(k) for i in have) for k in have[0]}
    out["closed_by_server"] = sum(int(i.get("closed_by_server") or 0) for i in have)
    out["repeats"] = len(have)
    out["p99_range"] = spread(i.get("p99_ms") for i in have)
    return out


def add_ratios(rows: list[Row], field: str, same: tuple[str, ...], base_key: str = "a") -> None:
    base = {tuple(r[k] for k in same): r.get(field) for r in rows if r["server"] == base_key}
    for r in rows:
        b = base.get(tuple(r[k] for k in same))
        v = r.get(field)
        r[f"{field}_vs_{base_key}"] = v / b if (v is not None and b) else None


def fanout_steps_summary(records: list[Record]) -> list[Row]:
    """Every ladder step, for the detail table and the plots."""
    out: list[Row] = []
    for rec in ok_records(records, "fanout"):
        for step in rec.get("steps", []):
            out.append(
                {
                    "server": rec["server"],
                    "transport": rec["transport"],
                    "connections": rec["connections"],
                    "repeat": rec["repeat"],
                    "rate": step["rate"],
                    "offered": step["offered_deliveries_per_s"],
                    "deliveries_per_s": step["deliveries_per_s"],
                    "p50_ms": step["latency_us"]["p50"] / 1000,
                    "p99_ms": step["latency_us"]["p99"] / 1000,
                    "cpu_us": step["server_cpu_us_per_delivery"],
                    "core0_us": step.get("core0_us_per_delivery"),
                    "server_cpu_share": step["server_cpu_share"],
                    "loadgen_cpu_share": step["loadgen_cpu_share"],
                    "core0_softirq": step.get("core0_softirq"),
                    "fails": step["fails"],
                }
            )
    return out


# -- idle ------------------------------------------------------------------------------


def idle_summary(records: list[Record]) -> list[Row]:
    rows = []
    for (key, transport, n), recs in group(
        ok_records(records, "idle"), "server", "transport", "connections"
    ).items():
        per_conn = [r.get("rss_per_connection") for r in recs]
        rows.append(
            {
                "server": key,
                "transport": transport,
                "connections": n,
                "repeats": len(recs),
                "connected": med(r.get("connections_ok") for r in recs),
                "rss_per_connection": med(per_conn),
                "rss_per_connection_range": spread(per_conn),
                "rss_before": med(r.get("rss_before") for r in recs),
                "rss_idle": med(r.get("rss_idle") for r in recs),
                "ramp_s": med(r.get("ramp_s") for r in recs),
            }
        )
    add_ratios(rows, "rss_per_connection", ("transport", "connections"))
    rows.sort(key=lambda r: (r["transport"], r["connections"], order(r["server"])))
    return rows


# -- slow consumers ----------------------------------------------------------------------


def slow_summary(records: list[Record]) -> list[Row]:
    rows = []
    recs_ok = ok_records(records, "slow")
    for (key, transport), recs in group(recs_ok, "server", "transport").items():
        ref = [r for r in recs if not r["stall_fraction"]]
        st = [r for r in recs if r["stall_fraction"]]
        reasons: Counter[str] = Counter()
        healthy_reasons: Counter[str] = Counter()
        for r in st:
            reasons.update(r["final"].get("stalled_close_reasons", {}))
            healthy_reasons.update(r["final"].get("close_reasons", {}))
        p99_ref = med(r["step"]["latency_us"]["p99"] / 1000 for r in ref)
        p99_st = med(r["step"]["latency_us"]["p99"] / 1000 for r in st)
        rss_ref = med(r["server_rss_max"] for r in ref)
        rss_st = med(r["server_rss_max"] for r in st)
        stalled = med(r["final"].get("stalled") for r in st)
        rows.append(
            {
                "server": key,
                "transport": transport,
                "connections": recs[0]["connections"],
                "repeats": len(st),
                "deliveries_per_s": med(r["step"]["deliveries_per_s"] for r in st),
                "p50_ms": med(r["step"]["latency_us"]["p50"] / 1000 for r in st),
                "p99_ms": p99_st,
                "p99_ref_ms": p99_ref,
                "p50_ref_ms": med(r["step"]["latency_us"]["p50"] / 1000 for r in ref),
                "p99_ratio": p99_st / p99_ref if (p99_st is not None and p99_ref) else None,
                "delivered_share": med(r["step"]["delivered_share"] for r in st),
                "cpu_us": med(r["step"]["server_cpu_us_per_delivery"] for r in st),
                "loadgen_cpu": med(r["step"]["loadgen_cpu_share"] for r in st),
                "rss_max": rss_st,
                "rss_ref_max": rss_ref,
                "rss_growth": rss_st - rss_ref if (rss_st is not None and rss_ref) else None,
                "rss_bound": (
                    stalled * (MAILBOX_BYTES + MAX_BATCH_BYTES + UVLOOP_HIGH_WATER)
                    if stalled is not None
                    else None
                ),
                "stalled": stalled,
                "stalled_dropped": med(r["final"].get("stalled_dropped") for r in st),
                "stalled_close_reasons": dict(reasons),
                "healthy_closed": sum(r["final"].get("closed_by_server", 0) for r in st),
                "healthy_close_reasons": dict(healthy_reasons),
                "server_dropped": med(r.get("server_stats_end", {}).get("dropped") for r in st),
                "gaps": sum(r["final"].get("gaps", 0) for r in st),
                "duplicates": sum(r["final"].get("duplicates", 0) for r in st),
            }
        )
    add_ratios(rows, "p99_ratio", ("transport",))
    rows.sort(key=lambda r: (r["transport"], order(r["server"])))
    return rows


# -- reconnect storm ---------------------------------------------------------------------


def storm_summary(records: list[Record]) -> list[Row]:
    rows = []
    for (key, transport), recs in group(
        ok_records(records, "storm"), "server", "transport"
    ).items():
        f = [r["final"] for r in recs]
        rows.append(
            {
                "server": key,
                "transport": transport,
                "connections": recs[0]["connections"],
                "rate": recs[0].get("rate"),
                "repeats": len(recs),
                "resumes": med(x.get("resumes") for x in f),
                "resumes_per_s": med(x.get("resumes_per_s") for x in f),
                "resumes_per_s_range": spread(x.get("resumes_per_s") for x in f),
                "resume_span_s": med(x.get("resume_span_s") for x in f),
                "resume_incomplete": med(x.get("resume_incomplete") for x in f),
                "resume_errors": med(x.get("resume_errors") for x in f),
                "resume_verified": med(x.get("resume_verified") for x in f),
                "resume_gaps": sum(x.get("resume_gaps", 0) for x in f),
                "resume_missed_events": sum(x.get("resume_missed_events", 0) for x in f),
                "resume_duplicates": sum(x.get("resume_duplicates", 0) for x in f),
                "gaps": sum(x.get("gaps", 0) for x in f),
                "duplicates": sum(x.get("duplicates", 0) for x in f),
                "storm_deliveries": med(x.get("storm_deliveries") for x in f),
                "p50_ms": med(r["before_storm"]["latency_us"]["p50"] / 1000 for r in recs),
                "p99_ms": med(r["before_storm"]["latency_us"]["p99"] / 1000 for r in recs),
                "cpu_us": med(r["before_storm"].get("server_cpu_us_per_delivery") for r in recs),
                "storm_cpu_s": med(r["storm_usage"]["server_cpu_s"] for r in recs),
                "storm_loadgen_cpu": med(r["storm_usage"]["loadgen_cpu_share"] for r in recs),
                "rss_max": med(r.get("server_rss_max") for r in recs),
            }
        )
    add_ratios(rows, "resumes_per_s", ("transport",))
    rows.sort(key=lambda r: (r["transport"], order(r["server"])))
    return rows


# -- micro ------------------------------------------------------------------------------


def micro_summary(records: list[Record]) -> list[Row]:
    rows = []
    for rec in ok_records(records, "micro"):
        runs = rec.get("runs", [])
        if not runs:
            continue
        rows.append(
            {
                "subscribers": rec["subscribers"],
                "repeats": len(runs),
                "deliveries_per_s": med(r["deliveries_per_s_median"] for r in runs),
                "deliveries_per_s_range": spread(r["deliveries_per_s_median"] for r in runs),
                "heap_allocations_per_delivery": med(
                    r["heap_allocations_per_delivery"] for r in runs
                ),
                "heap_bytes_per_delivery": med(r["heap_bytes_per_delivery"] for r in runs),
                "payload_bytes_copied_per_delivery": max(
                    r["payload_bytes_copied_per_delivery"] for r in runs
                ),
                "event_bytes": runs[0].get("event_bytes"),
            }
        )
    return rows


# -- chat round trip ---------------------------------------------------------------------

CHAT_PHASES = ("chat", "chat_fanout")


def chat_summary(records: list[Record]) -> list[Row]:
    rows = []
    for (key,), recs in group(ok_records(records, "chat"), "server").items():
        for phase in CHAT_PHASES:
            steps = [r[phase] for r in recs if phase in r]
            if not steps:
                continue
            chats = [st.get("chat", {}) for st in steps]
            sent = [c.get("sent") for c in chats]
            replies = [c.get("replies") for c in chats]
            rows.append(
                {
                    "server": key,
                    "transport": "ws",
                    "phase": phase,
                    "connections": recs[0]["connections"],
                    "chat_fraction": recs[0].get("chat_fraction"),
                    "chat_rate": recs[0].get("chat_rate"),
                    "repeats": len(steps),
                    "chatters": med(c.get("chatters") for c in chats),
                    "sent": med(sent),
                    "replies": med(replies),
                    "reply_share": med(
                        (c.get("replies", 0) / c["sent"]) if c.get("sent") else None for c in chats
                    ),
                    "errors": sum(int(c.get("errors") or 0) for c in chats),
                    "p50_ms": med(c.get("latency_us", {}).get("p50", 0) / 1000 for c in chats),
                    "p99_ms": med(c.get("latency_us", {}).get("p99", 0) / 1000 for c in chats),
                    "p99_range": spread(
                        c.get("latency_us", {}).get("p99", 0) / 1000 for c in chats
                    ),
                    "max_ms": med(c.get("latency_us", {}).get("max", 0) / 1000 for c in chats),
                    "fanout_rate": steps[0]["rate"],
                    "fanout_deliveries_per_s": med(st["deliveries_per_s"] for st in steps),
                    "fanout_delivered_share": med(st["delivered_share"] for st in steps),
                    "fanout_p99_ms": med(st["latency_us"]["p99"] / 1000 for st in steps)
                    if steps[0]["rate"]
                    else None,
                    "server_cpu_share": med(st["server_cpu_share"] for st in steps),
                    "loadgen_cpu": med(st["loadgen_cpu_share"] for st in steps),
                    "closed_by_server": sum(int(st["closed_by_server"]) for st in steps),
                }
            )
    rows.sort(key=lambda r: (CHAT_PHASES.index(r["phase"]), order(r["server"])))
    return rows


SUMMARIES = {
    "fanout": fanout_summary,
    "chat": chat_summary,
    "idle": idle_summary,
    "slow": slow_summary,
    "storm": storm_summary,
    "micro": micro_summary,
}


# -- goals --------------------------------------------------------------------------------


CPU_GOAL_US = 1.5
OF_R_GOAL = 0.9
OF_A_GOAL = 4.0
POINT_P99_GOAL_MS = 100.0
IDLE_GOAL_KIB = 8.0


def goals(summaries: dict[str, list[Row]], p99_limit_ms: float | None = None) -> list[Row]:
    out: list[Row] = []

    def verdict(goal: str, target: str, measured: str, met: bool | None, why: str = "") -> None:
        out.append({"goal": goal, "target": target, "measured": measured, "met": met, "why": why})

    fan = {(r["server"], r["transport"], r["connections"]): r for r in summaries.get("fanout", [])}
    ordered = sorted(fan.items(), key=lambda kv: (kv[0][1] != "sse", kv[0][2]))
    for (key, transport, n), r in ordered:
        if key != "s":
            continue
        t = transport.upper()
        bound = r.get("p99_limit_ms") or p99_limit_ms or 50.0
        a, ref = fan.get(("a", transport, n)), fan.get(("r", transport, n))
        if bound <= 50.0:
            cpu = r.get("cpu_us")
            at_s = (ref or {}).get("at_s") or {}
            r_cpu = at_s.get("cpu_us")
            measured = (
                f"{cpu:.2f} µs at {num(r.get('highest'))}/s (core 0 incl. softirq:"
                f" {fmt(r.get('core0_us'), 2)} µs); (r) at the same rate:"
                f" {fmt(r_cpu, 2)} µs"
                if cpu is not None
                else "no passing step"
            )
            verdict(
                f"{t} fan-out N={n:,}: (s) server CPU per delivery at its highest step with"
                f" p99 <= {bound:g} ms",
                f"<= {CPU_GOAL_US:g} µs and <= (r) at the same step",
                measured,
                cpu is not None and cpu <= CPU_GOAL_US and r_cpu is not None and cpu <= r_cpu,
                "" if r_cpu is not None else "(r) was not measured at (s)'s rate",
            )
            vs_r, vs_a = r.get("highest_vs_r"), r.get("highest_vs_a")
            parts = [f"{num(r.get('highest'))}/s"]
            if ref is not None:
                parts.append(f"(r) {num(ref.get('highest'))}/s = {pct(vs_r)}")
            if a is not None:
                parts.append(f"(a) {num(a.get('highest'))}/s = {ratio(vs_a)}")
            why = ""
            if not r.get("highest"):
                floors = ", ".join(
                    f"({k}) {fmt(x.get('floor_p99_ms'), 0)} ms"
                    for (k, tt, m), x in sorted(fan.items(), key=lambda kv: order(kv[0][0]))
                    if tt == transport and m == n
                )
                why = f"no passing step; p99 at the lowest rate: {floors}"
            verdict(
                f"{t} fan-out N={n:,}: (s) deliveries/s at p99 <= {bound:g} ms",
                f">= {OF_R_GOAL:.0%} of (r) and >= {OF_A_GOAL:g}x (a)",
                "; ".join(parts),
                vs_r is not None and vs_r >= OF_R_GOAL and vs_a is not None and vs_a >= OF_A_GOAL,
                why or ("" if vs_r is not None and vs_a is not None else "(r) or (a) missing"),
            )
        for deliveries, pt in sorted(r.get("points", {}).items(), key=lambda kv: float(kv[0])):
            p99 = pt.get("p99_ms")
            share = pt.get("delivered_share")
            closed = pt.get("closed_by_server", 0)
            others = "; ".join(
                f"({k}) {fmt((x.get('points', {}).get(deliveries) or {}).get('p99_ms'), 0)} ms"
                for (k, tt, m), x in sorted(fan.items(), key=lambda kv: order(kv[0][0]))
                if tt == transport and m == n and k != "s"
            )
            verdict(
                f"{t} fan-out N={n:,} at {num(float(deliveries))} deliveries/s: (s) p99",
                f"<= {POINT_P99_GOAL_MS:g} ms (all delivered, nobody dropped)",
                f"{fmt(p99, 1)} ms (p50 {fmt(pt.get('p50_ms'), 1)} ms), delivered"
                f" {pct(share)}, clients dropped {closed}; others: {others or '–'}",
                p99 is not None
                and p99 <= POINT_P99_GOAL_MS
                and share is not None
                and share >= 0.95
                and not closed,
            )
    for r in summaries.get("idle", []):
        if r["server"] != "s":
            continue
        v = r.get("rss_per_connection")
        verdict(
            f"idle RSS per connection, {r['transport'].upper()}, N={r['connections']:,}",
            f"<= {IDLE_GOAL_KIB:g} KiB",
            f"{v / KIB:.1f} KiB" if v is not None else "n/a",
            v is not None and v <= IDLE_GOAL_KIB * KIB,
        )
    chat = {(r["server"], r["phase"]): r for r in summaries.get("chat", [])}
    for phase in CHAT_PHASES:
        s_row, p_row = chat.get(("s", phase)), chat.get(("p", phase))
        if s_row is None:
            continue
        what = (
            "chat alone"
            if phase == "chat"
            else (
                f"chat while {num(s_row['fanout_rate'] * s_row['connections'])}"
                " deliveries/s fan out"
            )
        )
        met = None
        if p_row is not None:
            met = (
                s_row["p50_ms"] is not None
                and p_row["p50_ms"] is not None
                and s_row["p50_ms"] <= p_row["p50_ms"]
                and s_row["p99_ms"] <= p_row["p99_ms"]
                and (s_row.get("reply_share") or 0) >= 0.99
            )
        verdict(
            f"chat round trip, {s_row['connections']:,} WS, {pct(s_row['chat_fraction'])} chat"
            f" ({what}): (s) p50/p99",
            "no worse than (p) (every message answered)",
            f"(s) {fmt(s_row['p50_ms'], 2)}/{fmt(s_row['p99_ms'], 2)} ms, replies"
            f" {pct(s_row.get('reply_share'))}; (p) "
            + (
                f"{fmt(p_row['p50_ms'], 2)}/{fmt(p_row['p99_ms'], 2)} ms, replies"
                f" {pct(p_row.get('reply_share'))}"
                if p_row
                else "not measured"
            ),
            met,
        )
    for r in summaries.get("slow", []):
        if r["server"] != "s":
            continue
        ratio_v = r.get("p99_ratio")
        verdict(
            f"slow consumers ({r['transport'].upper()}): healthy p99 vs no-stall p99",
            "<= 1.5x",
            f"{fmt(r.get('p99_ms'), 1)} ms vs {fmt(r.get('p99_ref_ms'), 1)} ms = {ratio_v:.2f}x"
            if ratio_v is not None
            else "n/a",
            ratio_v is not None and ratio_v <= 1.5,
        )
        growth, bound = r.get("rss_growth"), r.get("rss_bound")
        verdict(
            f"slow consumers ({r['transport'].upper()}): server RSS within mailbox bounds",
            "growth <= stalled x (mailbox + batch + transport buffer)",
            f"{fmt(growth / MIB if growth is not None else None, 1)} MiB vs bound "
            f"{fmt(bound / MIB if bound else None, 1)} MiB",
            growth is not None and bound is not None and growth <= bound,
        )
        reasons = r.get("stalled_close_reasons", {})
        slow_reason = sum(v for k, v in reasons.items() if "slow_consumer" in k)
        verdict(
            f"slow consumers ({r['transport'].upper()}): stalled clients closed as slow",
            "every stalled client closed, reason slow_consumer",
            f"{fmt(r.get('stalled_dropped'), 0)}/{fmt(r.get('stalled'), 0)} closed per run;"
            f" reasons seen by clients: {reasons or 'none'};"
            f" server slow_consumer disconnects: {fmt(r.get('server_dropped'), 0)}",
            bool(r.get("stalled"))
            and r.get("stalled_dropped") == r.get("stalled")
            and slow_reason == sum(reasons.values()) > 0,
        )
    for r in summaries.get("storm", []):
        if r["server"] != "s":
            continue
        clean = r["resume_gaps"] == 0 and r["resume_duplicates"] == 0
        complete = not r.get("resume_incomplete") and not r.get("resume_errors")
        verdict(
            f"reconnect storm ({r['transport'].upper()}, N={r['connections']}): exact resume",
            "0 gaps, 0 duplicates, all resumed",
            f"{num(r.get('resumes_per_s'))} resumes/s; gaps {r['resume_gaps']}, duplicates "
            f"{r['resume_duplicates']}, incomplete {fmt(r.get('resume_incomplete'), 0)}, "
            f"errors {fmt(r.get('resume_errors'), 0)}",
            clean and complete,
        )
    for r in summaries.get("micro", []):
        verdict(
            f"native fan-out ({r['subscribers']} subscribers): no payload copy per delivery",
            "0 payload bytes copied",
            f"{r['payload_bytes_copied_per_delivery']} B;"
            f" {num(r['deliveries_per_s'])} deliveries/s",
            r["payload_bytes_copied_per_delivery"] == 0,
        )
    return out


def limits_text(r: Row) -> str:
    parts = [f"{k} x{v}" for k, v in r.get("limits", {}).items()]
    return "next step failed on " + ", ".join(parts)


# -- formatting -------------------------------------------------------------------------------


def num(v: float | int | None) -> str:
    if v is None:
        return "–"
    v = float(v)
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.0f}k"
    if abs(v) >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def fmt(v: float | int | None, digits: int) -> str:
    return "–" if v is None else f"{float(v):.{digits}f}"


def ratio(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


def mib(v: float | None) -> str:
    return "–" if v is None else f"{v / MIB:.1f}"


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.0f}%"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def label(key: str) -> str:
    return SERVERS[key].label if key in SERVERS else key


def fanout_md(rows: list[Row], p99_limit_ms: float | None = None) -> str:
    body = []
    for r in rows:
        rng = r.get("highest_range")
        bound = r.get("p99_limit_ms") or p99_limit_ms
        body.append(
            [
                label(r["server"]),
                r["transport"].upper(),
                f"{r['connections']:,}",
                fmt(bound, 0),
                f"**{num(r['highest'])}**" + (f" ({num(rng[0])}–{num(rng[1])})" if rng else ""),
                pct(r.get("highest_vs_r")),
                ratio(r.get("highest_vs_a")),
                fmt(r.get("p50_ms"), 1),
                fmt(r.get("p99_ms"), 1),
                fmt(r.get("cpu_us"), 2),
                fmt(r.get("core0_us"), 2),
                pct(r.get("server_cpu_share")),
                mib(r.get("rss")),
                pct(r.get("loadgen_cpu")),
                f"{fmt(r.get('floor_p99_ms'), 1)} @ {num(r.get('floor_rate'))}/s",
                f"{r['gaps']}/{r['duplicates']}",
                ", ".join(f"{k} ×{v}" for k, v in r["limits"].items()),
            ]
        )
    return table(
        [
            "server",
            "transport",
            "N",
            "p99 bound ms",
            "deliveries/s at p99 ≤ bound, median (min–max)",
            "of (r)",
            "vs (a)",
            "p50 ms",
            "p99 ms",
            "server CPU µs/delivery",
            "core 0 µs/delivery",
            "server CPU",
            "server RSS MiB",
            "loadgen CPU",
            "p99 ms at the lowest step",
            "gaps/dups",
            "next step failed on",
        ],
        body,
    )


def points_md(rows: list[Row]) -> str:
    """Fixed points and (r) at (s)'s rate: steps outside the ladder."""
    body = []
    for r in rows:
        items = [(f"{num(float(d))}/s (fixed)", pt) for d, pt in r.get("points", {}).items()]
        if r.get("at_s"):
            items.append(("(s)'s highest rate", r["at_s"]))
        for what, pt in items:
            if not pt:
                continue
            rng = pt.get("p99_range")
            body.append(
                [
                    label(r["server"]),
                    r["transport"].upper(),
                    f"{r['connections']:,}",
                    what,
                    num(pt.get("offered")),
                    num(pt.get("deliveries_per_s")),
                    pct(pt.get("delivered_share")),
                    fmt(pt.get("p50_ms"), 1),
                    f"**{fmt(pt.get('p99_ms'), 1)}**"
                    + (f" ({rng[0]:.0f}–{rng[1]:.0f})" if rng else ""),
                    fmt(pt.get("cpu_us"), 2),
                    fmt(pt.get("core0_us"), 2),
                    pct(pt.get("server_cpu_share")),
                    pct(pt.get("loadgen_cpu")),
                    str(pt.get("closed_by_server", 0)),
                    str(pt.get("repeats", "")),
                ]
            )
    if not body:
        return ""
    return table(
        [
            "server",
            "transport",
            "N",
            "step",
            "offered/s",
            "delivered/s",
            "delivered",
            "p50 ms",
            "p99 ms, median (min–max)",
            "server CPU µs/delivery",
            "core 0 µs/delivery",
            "server CPU",
            "loadgen CPU",
            "clients dropped (Σ)",
            "repeats",
        ],
        body,
    )


def chat_md(rows: list[Row]) -> str:
    body = []
    for r in rows:
        rng = r.get("p99_range")
        body.append(
            [
                label(r["server"]),
                "chat alone"
                if r["phase"] == "chat"
                else (f"chat + {num(r['fanout_rate'] * r['connections'])} deliveries/s"),
                f"{r['connections']:,}",
                fmt(r.get("chatters"), 0),
                fmt(r.get("sent"), 0),
                pct(r.get("reply_share")),
                str(r.get("errors", 0)),
                f"**{fmt(r.get('p50_ms'), 2)}**",
                f"**{fmt(r.get('p99_ms'), 2)}**" + (f" ({rng[0]:.1f}–{rng[1]:.1f})" if rng else ""),
                fmt(r.get("max_ms"), 1),
                fmt(r.get("fanout_p99_ms"), 1),
                pct(r.get("fanout_delivered_share")) if r.get("fanout_p99_ms") is not None else "–",
                pct(r.get("server_cpu_share")),
                pct(r.get("loadgen_cpu")),
                str(r.get("closed_by_server", 0)),
            ]
        )
    return table(
        [
            "server",
            "phase",
            "N",
            "chatting",
            "messages sent",
            "answered",
            "error frames",
            "round trip p50 ms",
            "round trip p99 ms, median (min–max)",
            "max ms",
            "fan-out p99 ms",
            "fan-out delivered",
            "server CPU",
            "loadgen CPU",
            "clients dropped",
        ],
        body,
    )


def ladder_md(steps: list[Row]) -> str:
    # Median per (server, N, rate) over the repeats that ran that rate.
    groups: dict[tuple[str, str, int, float], list[Row]] = defaultdict(list)
    for s in steps:
        groups[(s["server"], s["transport"], s["connections"], s["rate"])].append(s)
    body = []
    for (key, transport, n, rate), ss in sorted(
        groups.items(), key=lambda kv: (kv[0][1], kv[0][2], order(kv[0][0]), kv[0][3])
    ):
        fails = Counter(",".join(s["fails"]) or "ok" for s in ss)
        body.append(
            [
                label(key),
                transport.upper(),
                f"{n:,}",
                f"{rate:g}",
                num(ss[0]["offered"]),
                num(med(s["deliveries_per_s"] for s in ss)),
                fmt(med(s["p50_ms"] for s in ss), 1),
                fmt(med(s["p99_ms"] for s in ss), 1),
                fmt(med(s["cpu_us"] for s in ss), 2),
                pct(med(s["server_cpu_share"] for s in ss)),
                pct(med(s["loadgen_cpu_share"] for s in ss)),
                pct(med(s["core0_softirq"] for s in ss)),
                " ".join(f"{k}×{v}" for k, v in fails.items()),
            ]
        )
    return table(
        [
            "server",
            "transport",
            "N",
            "events/s",
            "offered/s",
            "delivered/s",
            "p50 ms",
            "p99 ms",
            "CPU µs/del",
            "server CPU",
            "loadgen CPU",
            "core 0 softirq",
            "verdicts",
        ],
        body,
    )


def idle_md(rows: list[Row]) -> str:
    body = []
    for r in rows:
        rng = r.get("rss_per_connection_range")
        v = r.get("rss_per_connection")
        body.append(
            [
                label(r["server"]),
                r["transport"].upper(),
                f"{r['connections']:,}",
                fmt(r.get("connected"), 0),
                f"**{fmt(v / KIB if v is not None else None, 1)}**"
                + (f" ({rng[0] / KIB:.1f}–{rng[1] / KIB:.1f})" if rng else ""),
                ratio(r.get("rss_per_connection_vs_a")),
                mib(r.get("rss_before")),
                mib(r.get("rss_idle")),
                fmt(r.get("ramp_s"), 1),
            ]
        )
    return table(
        [
            "server",
            "transport",
            "N",
            "connected",
            "RSS KiB per connection, median (min–max)",
            "vs (a)",
            "RSS before MiB",
            "RSS idle MiB",
            "connect time s",
        ],
        body,
    )


def slow_md(rows: list[Row]) -> str:
    body = []
    for r in rows:
        body.append(
            [
                label(r["server"]),
                r["transport"].upper(),
                f"{r['connections']}",
                num(r.get("deliveries_per_s")),
                fmt(r.get("p50_ms"), 1),
                f"**{fmt(r.get('p99_ms'), 1)}**",
                fmt(r.get("p99_ref_ms"), 1),
                f"**{ratio(r.get('p99_ratio'))}**",
                fmt(r.get("cpu_us"), 2),
                f"{mib(r.get('rss_max'))} / {mib(r.get('rss_ref_max'))}",
                mib(r.get("rss_growth")),
                pct(r.get("loadgen_cpu")),
                f"{fmt(r.get('stalled_dropped'), 0)}/{fmt(r.get('stalled'), 0)}",
                "; ".join(f"{k} ×{v}" for k, v in r["stalled_close_reasons"].items()) or "–",
                f"{r['healthy_closed']}",
                f"{r['gaps']}/{r['duplicates']}",
            ]
        )
    return table(
        [
            "server",
            "transport",
            "N",
            "delivered/s (healthy)",
            "p50 ms",
            "healthy p99 ms",
            "no-stall p99 ms",
            "p99 ratio",
            "CPU µs/del",
            "RSS max MiB stall / no-stall",
            "RSS growth MiB",
            "loadgen CPU",
            "stalled closed",
            "close reasons seen by stalled clients (all repeats)",
            "healthy closed",
            "gaps/dups",
        ],
        body,
    )


def storm_md(rows: list[Row]) -> str:
    body = []
    for r in rows:
        rng = r.get("resumes_per_s_range")
        body.append(
            [
                label(r["server"]),
                r["transport"].upper(),
                f"{r['connections']:,}",
                fmt(r.get("resumes"), 0),
                f"**{num(r.get('resumes_per_s'))}**"
                + (f" ({num(rng[0])}–{num(rng[1])})" if rng else ""),
                ratio(r.get("resumes_per_s_vs_a")),
                fmt(r.get("resume_span_s"), 1),
                f"{fmt(r.get('resume_incomplete'), 0)}/{fmt(r.get('resume_errors'), 0)}",
                f"**{r['resume_gaps']}**",
                f"{r['resume_missed_events']}",
                f"**{r['resume_duplicates']}**",
                fmt(r.get("resume_verified"), 0),
                fmt(r.get("p50_ms"), 1),
                fmt(r.get("p99_ms"), 1),
                fmt(r.get("cpu_us"), 2),
                fmt(r.get("storm_cpu_s"), 1),
                mib(r.get("rss_max")),
                pct(r.get("storm_loadgen_cpu")),
            ]
        )
    return table(
        [
            "server",
            "transport",
            "N",
            "resumes",
            "resumes/s, median (min–max)",
            "vs (a)",
            "resume span s",
            "incomplete/errors",
            "resume gaps (Σ)",
            "missed events (Σ)",
            "resume duplicates (Σ)",
            "verified",
            "p50 ms before",
            "p99 ms before",
            "CPU µs/del before",
            "server CPU s in storm",
            "server RSS MiB",
            "loadgen CPU in storm",
        ],
        body,
    )


def micro_md(rows: list[Row]) -> str:
    body = []
    for r in rows:
        rng = r.get("deliveries_per_s_range")
        body.append(
            [
                f"{r['subscribers']:,}",
                f"{r['event_bytes']}",
                f"**{num(r['deliveries_per_s'])}**"
                + (f" ({num(rng[0])}–{num(rng[1])})" if rng else ""),
                fmt(1e6 / r["deliveries_per_s"] * 1000, 1) if r["deliveries_per_s"] else "–",
                fmt(r["heap_allocations_per_delivery"], 4),
                fmt(r["heap_bytes_per_delivery"], 2),
                f"**{r['payload_bytes_copied_per_delivery']}**",
            ]
        )
    return table(
        [
            "subscribers",
            "event bytes",
            "mailbox deliveries/s, median of medians",
            "ns per delivery",
            "heap allocations/delivery",
            "heap bytes/delivery",
            "payload bytes copied/delivery",
        ],
        body,
    )


def goals_md(rows: list[Row]) -> str:
    mark = {True: "met", False: "**missed**", None: "n/a"}
    return table(
        ["goal", "target", "measured (medians)", "verdict", "note"],
        [[g["goal"], g["target"], g["measured"], mark[g["met"]], g.get("why", "")] for g in rows],
    )
