"""The soak report's figures (matplotlib, Agg backend), as PNG bytes.

The time-series figure reads top to bottom: a legend, then one lane per layer of what happened
(:mod:`harness.report.lanes`: scenario, network, power, boots, OTA), then the data panels (heap, battery,
RSSI, temperature, latency, message rate) on the same time axis. The axis is in the unit the run's length
calls for (s, min, h, days: :func:`harness.report.units.time_axis`); every axis carries its unit. Labels
are drawn only where they fit; points too close to tell apart are grouped with a count.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator

from harness.report import lanes as ln
from harness.report.analysis import Analysis
from harness.report.trends import Trend
from harness.report.units import TimeAxis, time_axis
from harness.report.verdict import trend_line

BAD = "#d62728"
WIDTH_IN = 12.0
DPI = 100
LANE_IN = 0.34
PANEL_IN = 1.55
#: Approximate width of one character of a 7.5 pt label, in pixels at DPI (for "does the label fit").
CHAR_PX = 5.6
#: Points closer than this many pixels are drawn as one group.
GROUP_PX = 7.0


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def axis_for(a: Analysis) -> TimeAxis:
    return time_axis(a.span)


def _x(a: Analysis, axis: TimeAxis) -> Callable[[Any], Any]:
    """Unix seconds (a number, an array or a Series) to the axis unit since the run started."""
    return lambda t: (t - a.start) / axis.scale


def _xmax(a: Analysis, axis: TimeAxis) -> float:
    return max(a.span / axis.scale, 1.0 / axis.scale)


def _px_per_unit(ax: Axes, fig: Figure, xmax: float) -> float:
    width_px = ax.get_position().width * fig.get_figwidth() * DPI
    return width_px / xmax if xmax > 0 else 1.0


def _draw_lane(ax: Axes, fig: Figure, lane: ln.Lane, x: Callable[[Any], Any], xmax: float) -> None:
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_ylabel(f"{lane.name} ({len(lane.items)})", rotation=0, ha="right", va="center", fontsize=8)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", alpha=0.25)
    ppu = _px_per_unit(ax, fig, xmax)
    label_end = -1e9  # x (px) where the last drawn label ends: labels never overlap
    spans = [i for i in lane.items if not i.point]
    for i in spans:
        x0, x1 = float(x(i.start)), float(x(i.end))
        ax.axvspan(x0, max(x1, x0 + 1.5 / ppu), ymin=0.12, ymax=0.88, color=ln.COLOURS[i.key], alpha=0.85, lw=0)
        room = (x1 - x0) * ppu
        need = len(i.label) * CHAR_PX + 6
        if room >= need and x0 * ppu >= label_end:
            ax.text(x0 + 3 / ppu, 0.5, i.label, fontsize=7.5, va="center", ha="left", color="#111", clip_on=True)
            label_end = x0 * ppu + need
    points = sorted((i for i in lane.items if i.point), key=lambda i: i.start)
    if not points:
        return
    xs = [float(x(i.start)) for i in points]
    for group in ln.clusters(xs, GROUP_PX / ppu):
        items = [points[k] for k in group]
        bad = [i for i in items if i.key == "boot-unexpected"]
        colour = ln.COLOURS[(bad or items)[0].key]
        gx = [xs[k] for k in group]
        ax.vlines(gx, 0.12, 0.88, color=colour, lw=1.6 if bad else 1.1)
        labels = {i.label for i in items}
        count = f"\u00d7{len(items)}" if len(items) > 1 else ""
        full = f"{labels.pop()} {count}".strip() if len(labels) == 1 else count
        start_px = max(gx) * ppu + 3
        # a group's label only where the next group does not start before it ends; short form if need be
        nxt = next((xs[k] for k in range(group[-1] + 1, len(xs))), None)
        free = (nxt * ppu - start_px) if nxt is not None else (xmax * ppu - start_px)
        for text in dict.fromkeys(t for t in (full, count) if t):
            need = len(text) * CHAR_PX + 6
            if start_px >= label_end and free >= need:
                ax.text(max(gx) + 3 / ppu, 0.5, text, fontsize=7.5, va="center", ha="left", color=colour)
                label_end = start_px + need
                break


def _shade(ax: Axes, a: Analysis, x: Callable[[Any], Any]) -> None:
    """On data panels only what explains gaps in the data, faintly: partitions and broker outages (profiles
    are in their lane), and unexpected boots."""
    for b in a.bands:
        if b.kind not in ("partition", "broker"):
            continue
        ax.axvspan(x(b.start), x(b.end), color=ln.COLOURS.get(b.kind, "#bab0ac"), alpha=0.12, lw=0)
    for rb in a.reboots:
        if not rb.expected:
            ax.axvline(x(rb.t), color=BAD, lw=0.9, ls="--", alpha=0.8)


def _panels(a: Analysis, axis: TimeAxis) -> list[tuple[str, Callable[[Axes], None]]]:
    tel, win = a.telemetry, a.windows
    x = _x(a, axis)
    panels: list[tuple[str, Callable[[Axes], None]]] = []
    if tel.empty:
        return panels

    def series(column: str, scale: float) -> Callable[[Axes], None]:
        def draw(ax: Axes) -> None:
            for device, part in tel.groupby("device"):
                ax.plot(x(part["t"]), part[column] * scale, ".", ms=2.2, label=str(device) or "device")

        return draw

    for column, title, scale in (
        ("heap_free", "heap free\n(KiB)", 1 / 1024),
        ("battery_v", "battery\n(V)", 1.0),
        ("rssi", "RSSI\n(dBm)", 1.0),
        ("temp_c", "temperature\n(°C)", 1.0),
    ):
        if tel[column].notna().any():
            panels.append((title, series(column, scale)))
    if not win.empty:
        wx = x(win["t"])
        per = f"{a.window / 60:g} min" if a.window >= 60 else f"{a.window:g} s"

        def latency(ax: Axes) -> None:
            ax.plot(wx, win["latency_p50"] * 1000, "-", lw=1.2, color="#4e79a7", label="latency p50")
            ax.plot(wx, win["latency_p99"] * 1000, "-", lw=1.2, color="#e15759", label="latency p99")
            ax.set_yscale("symlog", linthresh=100)
            _latency_ticks(ax, float(np.nanmax(win["latency_p99"].to_numpy(dtype=float) * 1000, initial=0.0)))
            ax.legend(loc="upper left", fontsize=7, ncols=2, framealpha=0.8)

        def msgs(ax: Axes) -> None:
            ax.step(wx, win["rate_per_min"], where="mid", lw=1.2, color="#4e79a7")
            ax.set_ylim(bottom=0)

        panels += [(f"latency\n(ms, per {per})", latency), (f"messages\n(per min, {per})", msgs)]
    return panels


def _latency_ticks(ax: Axes, top_ms: float) -> None:
    """Ticks a reader can read on the latency panel's symlog axis (linear to 100 ms, then decades):
    0, 50, 100 ms, 1,000 ms, … up to the highest p99, in plain numbers (not only ``10²``)."""
    top = max(top_ms, 100.0)
    ticks = [0.0, 50.0, 100.0] + [10.0**k for k in range(3, int(np.ceil(np.log10(top))) + 1)]
    ax.set_yticks(ticks, [f"{t:,.0f}" for t in ticks])
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylim(0, ticks[-1] * 1.15)


def _legend_handles(all_lanes: list[ln.Lane], devices: list[str]) -> list[Any]:
    handles: list[Any] = []
    for key in ln.keys_used(all_lanes):
        label = ln.LEGEND[key]
        if key in ("power", "supply", "boot", "boot-unexpected"):
            handles.append(Line2D([], [], color=ln.COLOURS[key], lw=2, label=label))
        else:
            handles.append(Patch(color=ln.COLOURS[key], label=label))
    if len(devices) > 1:
        handles += [Line2D([], [], marker=".", ls="", color=f"C{i}", label=d) for i, d in enumerate(devices)]
    return handles


def timeseries(a: Analysis) -> bytes | None:
    """Lanes plus heap, battery, RSSI, temperature, latency and message rate; None when there is nothing."""
    axis = axis_for(a)
    x = _x(a, axis)
    all_lanes = ln.lanes(a)
    panels = _panels(a, axis)
    if not panels and not all_lanes:
        return None
    heights = [LANE_IN] * len(all_lanes) + [PANEL_IN] * len(panels)
    legend_in, axis_in = 0.62, 0.55
    total = sum(heights) + legend_in + axis_in + 0.12 * len(heights)
    fig = plt.figure(figsize=(WIDTH_IN, total))
    grid = fig.add_gridspec(
        len(heights),
        1,
        height_ratios=heights,
        hspace=0.18,
        left=0.105,
        right=0.96,
        top=1 - legend_in / total,
        bottom=axis_in / total,
    )
    xmax = _xmax(a, axis)
    axes: list[Axes] = []
    for row in range(len(heights)):
        ax = fig.add_subplot(grid[row], sharex=axes[0] if axes else None)
        ax.set_xlim(0, xmax)
        axes.append(ax)
    for ax, lane in zip(axes, all_lanes, strict=False):
        _draw_lane(ax, fig, lane, x, xmax)
    for ax, (title, draw) in zip(axes[len(all_lanes) :], panels, strict=True):
        draw(ax)
        _shade(ax, a, x)
        ax.set_ylabel(title, fontsize=8)
        ax.grid(alpha=0.25)
    for ax in axes:
        ax.tick_params(labelsize=8)
        if ax is not axes[-1]:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel(axis.label, fontsize=9)
    if len(axes) > 3:  # a tall figure: the time scale on top too, where the reader starts
        axes[0].tick_params(labeltop=True, top=True, labelsize=7, pad=1)
        axes[0].annotate(axis.unit, xy=(1.0, 1.0), xycoords="axes fraction", xytext=(3, 1),
                         textcoords="offset points", fontsize=7, ha="left", va="bottom")  # fmt: skip
    devices = sorted(str(d) for d in a.telemetry["device"].dropna().unique()) if not a.telemetry.empty else []
    handles = _legend_handles(all_lanes, devices)
    if handles:
        fig.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(0.105, 1.0),
            ncols=min(len(handles), 7),
            fontsize=8,
            frameon=False,
        )
    return _png(fig)


def trend_plot(a: Analysis, trend: Trend, column: str, title: str, scale: float = 1.0) -> bytes | None:
    """Samples of one boot after another, the fitted slope with its interval, and the projection."""
    tel = a.telemetry.dropna(subset=[column])
    fit = trend.fit
    if tel.empty or fit is None:
        return None
    axis = axis_for(a)
    x = _x(a, axis)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, 3.0))
    fig.subplots_adjust(left=0.105, right=0.96, top=0.86, bottom=0.18)
    ax.plot(x(tel["t"]), tel[column] * scale, ".", ms=2.2, color="#4e79a7", alpha=0.6, label="samples")
    last = tel[tel["t"] >= _last_segment_start(tel)]
    t_end = fit.at
    span = np.linspace(float(last["t"].min()), t_end, 50)
    bad = trend.verdict in ("leak", "drain")
    colour = BAD if bad else "#59a14f"
    ax.plot(x(span), (fit.level + fit.slope * (span - t_end)) * scale, color=colour, lw=2, label="fit (latest boot)")
    for k, slope in enumerate((fit.low, fit.high)):
        ax.plot(
            x(span),
            (fit.level + slope * (span - t_end)) * scale,
            ":",
            color=colour,
            lw=1,
            label="confidence interval" if k == 0 else None,
        )
    if trend.exhaustion_s is not None and bad:
        ahead = min(trend.exhaustion_s, max(a.span, 600.0))
        proj = np.linspace(t_end, t_end + ahead, 50)
        ax.plot(x(proj), (fit.level + fit.slope * (proj - t_end)) * scale, "--", color=colour, lw=1, label="projection")
    for rb in a.reboots:
        ax.axvline(x(rb.t), color="#9c755f" if rb.expected else BAD, lw=0.6, alpha=0.5)
    ax.set_title(trend_line(trend).text, fontsize=9, loc="left")
    ax.set_ylabel(title, fontsize=8)
    ax.set_xlabel(axis.label, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.25)
    ax.legend(loc="lower left", fontsize=7, ncols=4, framealpha=0.85)
    return _png(fig)


def _last_segment_start(tel: pd.DataFrame) -> float:
    last = tel.iloc[-1]
    same = tel[(tel["device"] == last["device"]) & (tel["boot_id"].astype(str) == str(last["boot_id"]))]
    return float(same["t"].min())


def figures(a: Analysis) -> dict[str, bytes]:
    """All figures the soak report shows, by file name (only those the run has data for)."""
    out: dict[str, bytes | None] = {
        "timeseries.png": timeseries(a),
        "heap-trend.png": trend_plot(a, a.heap, "heap_free", "heap free (KiB)", 1 / 1024),
        "battery-trend.png": trend_plot(a, a.battery, "battery_v", "battery (V)"),
    }
    return {name: png for name, png in out.items() if png is not None}
