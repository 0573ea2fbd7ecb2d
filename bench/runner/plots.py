"""PNG plots: deliveries/s against connections, latency CDFs, RSS against connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on the benchmark machine
import matplotlib.pyplot as plt  # noqa: E402

from runner.report import MIB, Record, Row, best_step, label, ok_records  # noqa: E402

COLORS = {"s": "tab:blue", "a": "tab:red", "b": "tab:orange", "r": "tab:green", "g": "tab:purple"}
STYLE = {"sse": "-", "ws": "--"}


def median_record(recs: list[Record]) -> Record:
    """The repeat whose highest sustained rate is the median one."""
    ranked = sorted(recs, key=lambda r: (best_step(r)[0] or {}).get("deliveries_per_s", 0.0))
    return ranked[len(ranked) // 2]


def fanout_plot(records: list[Record], summary: list[Row], path: Path, p99_limit: float) -> bool:
    if not summary:
        return False
    ns = sorted({r["connections"] for r in summary})
    fig, axes = plt.subplots(1, 1 + len(ns), figsize=(5.5 * (1 + len(ns)), 4.5))
    ax = axes[0]
    for key, transport in sorted({(r["server"], r["transport"]) for r in summary}):
        rows = sorted(
            (r for r in summary if r["server"] == key and r["transport"] == transport),
            key=lambda r: r["connections"],
        )
        xs = [r["connections"] for r in rows]
        ys = [r["highest"] or 0 for r in rows]
        lo = [y - (r["highest_range"] or (y, y))[0] for y, r in zip(ys, rows, strict=True)]
        hi = [(r["highest_range"] or (y, y))[1] - y for y, r in zip(ys, rows, strict=True)]
        ax.errorbar(
            xs,
            ys,
            yerr=[lo, hi],
            marker="o",
            capsize=3,
            color=COLORS.get(key),
            linestyle=STYLE.get(transport, "-"),
            label=f"{label(key)} {transport.upper()}",
        )
    ax.set_xscale("log")
    ax.set_xticks(ns, [f"{n:,}" for n in ns])
    ax.set_xlabel("connections")
    ax.set_ylabel(f"deliveries/s at p99 ≤ {p99_limit:g} ms (median, min–max)")
    ax.set_title("Fan-out: highest sustained deliveries/s")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    # p99 against offered load: where each server's latency turns.
    recs = ok_records(records, "fanout")
    for ax, n in zip(axes[1:], ns, strict=True):
        for rec in recs:
            if rec["connections"] != n:
                continue
            steps = rec.get("steps", [])
            ax.plot(
                [s["offered_deliveries_per_s"] for s in steps],
                [max(0.01, s["latency_us"]["p99"] / 1000) for s in steps],
                marker=".",
                alpha=0.7,
                color=COLORS.get(rec["server"]),
                linestyle=STYLE.get(rec["transport"], "-"),
                label=f"{label(rec['server'])} {rec['transport'].upper()}"
                if rec["repeat"] == 0
                else None,
            )
        ax.axhline(p99_limit, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered deliveries/s (events/s × N)")
        ax.set_ylabel("p99 latency, ms")
        ax.set_title(f"N = {n:,}: p99 along the ladder (every repeat)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def cdf_plot(records: list[Record], path: Path) -> bool:
    recs = ok_records(records, "fanout")
    if not recs:
        return False
    ns = sorted({r["connections"] for r in recs})
    fig, axes = plt.subplots(2, len(ns), figsize=(6 * len(ns), 8.5), squeeze=False)
    for col, n in enumerate(ns):
        by_target: dict[tuple[str, str], list[Record]] = {}
        for r in recs:
            if r["connections"] == n:
                by_target.setdefault((r["server"], r["transport"]), []).append(r)
        for row, which in enumerate(("first", "best")):
            ax = axes[row][col]
            drawn = 0
            for (key, transport), rs in sorted(by_target.items()):
                rec = median_record(rs)
                steps = rec.get("steps", [])
                if not steps:
                    continue
                step: dict[str, Any] | None = steps[0] if which == "first" else best_step(rec)[0]
                if step is None:
                    continue
                cdf = step["latency_cdf"]
                drawn += 1
                ax.plot(
                    [max(0.01, v / 1000) for _, v in cdf],
                    [q for q, _ in cdf],
                    color=COLORS.get(key),
                    linestyle=STYLE.get(transport, "-"),
                    marker=".",
                    label=f"{label(key)} {transport.upper()}"
                    f" @ {step['offered_deliveries_per_s']:,.0f}/s",
                )
            ax.set_xscale("log")
            ax.set_xlabel("latency, ms (publish → client read)")
            ax.set_ylabel("fraction of deliveries")
            title = "common first step" if which == "first" else "highest sustained step"
            ax.set_title(f"N = {n:,}: latency CDF at the {title}")
            ax.grid(True, which="both", alpha=0.3)
            if drawn:
                ax.legend(fontsize=7, loc="lower right")
            else:
                ax.text(0.5, 0.5, "no server passed any step", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def rss_plot(records: list[Record], path: Path) -> bool:
    recs = [r for r in ok_records(records, "idle") if r.get("rss_curve")]
    if not recs:
        return False
    fig, ax = plt.subplots(figsize=(7.5, 5))
    seen: set[tuple[str, str, int]] = set()
    for rec in sorted(recs, key=lambda r: r["repeat"]):
        ident = (rec["server"], rec["transport"], rec["connections"])
        if ident in seen:
            continue  # one curve per server and transport: the first repeat
        seen.add(ident)
        curve = sorted(rec["rss_curve"])
        ax.plot(
            [c for c, _ in curve],
            [r / MIB for _, r in curve],
            color=COLORS.get(rec["server"]),
            linestyle=STYLE.get(rec["transport"], "-"),
            label=f"{label(rec['server'])} {rec['transport'].upper()}",
        )
    ax.set_xlabel("open connections (server's count)")
    ax.set_ylabel("server RSS, MiB")
    ax.set_title("Idle memory: RSS against connections (heartbeats on)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
