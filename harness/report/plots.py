"""The soak report's figures (matplotlib, Agg backend), as PNG bytes.

Every time series shares one x axis (hours since the run started) and shows every injection: spans
as shaded bands (partition, profile change, broker outage) and moments as vertical markers (power cut,
OTA outcome, reboot with its cause; red when unexpected).
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

from harness.report.analysis import Analysis
from harness.report.trends import Trend

BAND_COLOURS = {"partition": "#e15759", "profile": "#f28e2b", "impairment": "#edc948", "broker": "#b07aa1"}
MARKER_COLOURS = {"power": "#4e79a7", "ota": "#59a14f", "reboot": "#9c755f"}
BAD = "#d62728"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _decorate(ax: Axes, a: Analysis, *, labels: bool) -> None:
    hours = _hours(a)
    for b in a.bands:
        ax.axvspan(hours(b.start), hours(b.end), color=BAND_COLOURS.get(b.kind, "#bab0ac"), alpha=0.18, lw=0)
        if labels:
            ax.text(
                hours(b.start),
                1.0,
                f" {b.label}",
                transform=ax.get_xaxis_transform(),
                fontsize=7,
                va="bottom",
                ha="left",
                color=BAND_COLOURS.get(b.kind, "#555"),
                clip_on=False,
            )
    for m in a.markers:
        colour = BAD if m.bad else MARKER_COLOURS.get(m.kind, "#555")
        ax.axvline(hours(m.t), color=colour, lw=1.0, ls="--" if m.kind == "reboot" else "-", alpha=0.8)
        if labels:
            ax.text(
                hours(m.t),
                1.0,
                m.label,
                transform=ax.get_xaxis_transform(),
                rotation=60,
                fontsize=7,
                va="bottom",
                ha="left",
                color=colour,
                clip_on=False,
            )


def _hours(a: Analysis) -> Callable[[Any], Any]:
    """Unix seconds (a number, an array or a Series) to hours since the run started."""
    return lambda t: (t - a.start) / 3600.0


def timeseries(a: Analysis) -> bytes | None:
    """Heap, battery, RSSI, temperature, latency p50/p99 and message rate; None without telemetry."""
    tel, win = a.telemetry, a.windows
    if tel.empty:
        return None
    panels: list[tuple[str, Callable[[Axes], None]]] = []
    x = (tel["t"] - a.start) / 3600.0

    def series(column: str, scale: float = 1.0) -> Callable[[Axes], None]:
        def draw(ax: Axes) -> None:
            for device, part in tel.groupby("device"):
                ax.plot((part["t"] - a.start) / 3600.0, part[column] * scale, ".", ms=2, label=str(device))

        return draw

    for column, title, scale in (
        ("heap_free", "heap free (KiB)", 1 / 1024),
        ("battery_v", "battery (V)", 1.0),
        ("rssi", "RSSI (dBm)", 1.0),
        ("temp_c", "temperature (°C)", 1.0),
    ):
        if tel[column].notna().any():
            panels.append((title, series(column, scale)))
    if not win.empty:
        wx = (win["t"] - a.start) / 3600.0

        def latency(ax: Axes) -> None:
            ax.plot(wx, win["latency_p50"] * 1000, "-", lw=1.2, label="p50")
            ax.plot(wx, win["latency_p99"] * 1000, "-", lw=1.2, label="p99")
            ax.set_yscale("symlog", linthresh=100)
            ax.legend(loc="upper right", fontsize=7)

        def rate(ax: Axes) -> None:
            ax.step(wx, win["rate_per_min"], where="mid", lw=1.2)
            ax.set_ylim(bottom=0)

        per = f"{a.window / 60:g} min"
        panels += [
            (f"latency ms\n({per} p50/p99)", latency),
            (f"msgs/min\n(per {per})", rate),
        ]
    fig, axes = plt.subplots(
        len(panels), 1, sharex=True, figsize=(12, 1.9 * len(panels) + 0.8), squeeze=False
    )
    for i, (ax, (title, draw)) in enumerate(zip(axes[:, 0], panels, strict=True)):
        draw(ax)
        _decorate(ax, a, labels=i == 0)
        ax.set_ylabel(title, fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25)
    axes[-1, 0].set_xlabel("hours since start")
    # A run of a moment (or none) still gets a visible axis: at least one second wide.
    axes[-1, 0].set_xlim(0, max(float(x.max()), a.span / 3600.0, 1.0 / 3600.0))
    fig.subplots_adjust(hspace=0.12)
    return _png(fig)


def trend_plot(a: Analysis, trend: Trend, column: str, title: str, scale: float = 1.0) -> bytes | None:
    """Samples of one boot after another, the fitted slope with its interval, and the projection."""
    tel = a.telemetry.dropna(subset=[column])
    fit = trend.fit
    if tel.empty or fit is None:
        return None
    fig, ax = plt.subplots(figsize=(12, 3.2))
    hours = _hours(a)
    ax.plot(hours(tel["t"]), tel[column] * scale, ".", ms=2, color="#4e79a7", alpha=0.6, label="samples")
    last = tel[tel["t"] >= _last_segment_start(tel)]
    t_end = fit.at
    t_from = float(last["t"].min())
    span = np.linspace(t_from, t_end, 50)
    colour = BAD if trend.verdict in ("leak", "drain") else "#59a14f"
    ax.plot(
        hours(span),
        (fit.level + fit.slope * (span - t_end)) * scale,
        color=colour,
        lw=2,
        label=f"fit {trend.slope_per_hour:+.4g} {trend.unit}/h",
    )
    for slope, style in ((fit.low, ":"), (fit.high, ":")):
        ax.plot(hours(span), (fit.level + slope * (span - t_end)) * scale, style, color=colour, lw=1)
    if trend.exhaustion_s is not None and trend.verdict in ("leak", "drain"):
        ahead = min(trend.exhaustion_s, max(a.span, 3600.0))
        proj = np.linspace(t_end, t_end + ahead, 50)
        ax.plot(
            hours(proj),
            (fit.level + fit.slope * (proj - t_end)) * scale,
            "--",
            color=colour,
            lw=1,
            label="projection",
        )
    _decorate(ax, a, labels=False)
    ax.set_title(trend.text, fontsize=9, loc="left")
    ax.set_ylabel(title, fontsize=8)
    ax.set_xlabel("hours since start")
    ax.grid(alpha=0.25)
    ax.legend(loc="lower left", fontsize=7)
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
