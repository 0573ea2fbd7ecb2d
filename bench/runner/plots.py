"""PNG plots: deliveries/s against connections, latency CDFs, RSS against connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on the benchmark machine
import matplotlib.pyplot as plt  # noqa: E402

from runner.report import MIB, Record, Row, best_step, label, ok_records, order  # noqa: E402

COLORS = {
    "s": "tab:blue",
    "p": "tab:cyan",
    "a": "tab:red",
    "b": "tab:orange",
    "r": "tab:green",
    "g": "tab:purple",
}
STYLE = {"sse": "-", "ws": "--"}


def median_record(recs: list[Record]) -> Record:
    """The repeat whose highest sustained rate is the median one."""
    ranked = sorted(recs, key=lambda r: (best_step(r)[0] or {}).get("deliveries_per_s", 0.0))
    return ranked[len(ranked) // 2]


def fanout_plot(records: list[Record], summary: list[Row], path: Path) -> bool:
    if not summary:
        return False
    ns = sorted({r["connections"] for r in summary})
    transports = [t for t in ("sse", "ws") if any(r["transport"] == t for r in summary)]
    panels = [(n, t) for n in ns for t in transports]
    bounds = {r["connections"]: r.get("p99_limit_ms") for r in summary}
    # The summary on the left over both rows; one panel per (N, transport) in a grid.
    rows_n = 2 if len(panels) > 2 else 1
    cols = 1 + (len(panels) + rows_n - 1) // rows_n
    fig = plt.figure(figsize=(5.4 * cols, 4.4 * rows_n))
    grid = fig.add_gridspec(rows_n, cols)
    ax = fig.add_subplot(grid[:, 0])
    panel_axes = [fig.add_subplot(grid[i % rows_n, 1 + i // rows_n]) for i in range(len(panels))]
    for key, transport in sorted(
        {(r["server"], r["transport"]) for r in summary}, key=lambda kt: (kt[1], order(kt[0]))
    ):
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
    ax.set_yscale("log")
    ax.set_xticks(ns, [f"{n:,}\n(p99 ≤ {bounds.get(n) or 0:g} ms)" for n in ns])
    ax.set_xlabel("connections (p99 bound of a passing step)")
    ax.set_ylabel("highest passing deliveries/s (median, min–max; 0 not shown)")
    ax.set_title("Fan-out: highest sustained deliveries/s")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    # p99 against offered load: where each server's latency turns.
    recs = ok_records(records, "fanout")
    for ax, (n, transport) in zip(panel_axes, panels, strict=True):
        for rec in recs:
            if rec["connections"] != n or rec["transport"] != transport:
                continue
            steps = sorted(
                [*rec.get("steps", []), *rec.get("points", [])], key=lambda st: st["rate"]
            )
            ax.plot(
                [st["offered_deliveries_per_s"] for st in steps],
                [max(0.01, st["latency_us"]["p99"] / 1000) for st in steps],
                marker=".",
                alpha=0.7,
                color=COLORS.get(rec["server"]),
                linestyle=STYLE.get(rec["transport"], "-"),
                label=label(rec["server"]) if rec["repeat"] == 0 else None,
            )
        if bounds.get(n):
            ax.axhline(bounds[n], color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered deliveries/s (events/s × N)")
        ax.set_ylabel("p99 latency, ms")
        ax.set_title(f"{transport.upper()}, N = {n:,}: p99 along the ladder")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
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
