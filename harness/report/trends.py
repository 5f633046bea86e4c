"""Leak and drain trends: a fitted slope with its confidence interval, a verdict, and where the trend
is real, the projected time until the resource runs out.

A trend is *real* when the confidence interval excludes zero and, at that rate, the resource would run
out within :data:`HORIZON` — a slope that would take decades is flat for any practical purpose. The fit
is within boots (a reboot refills the heap: one level per boot, one common slope), on boots with at least
:data:`MIN_BOOT_SAMPLES` samples, :data:`MIN_SAMPLES` in all; a fall is called a leak or drain from
:data:`MIN_SPAN` of telemetry within boots, or from less only when it would exhaust the resource within
:data:`PROJECTION_FACTOR` times the time observed. Anything less is ``unknown``, and the text says why.

The interval is a :data:`CONFIDENCE` one (99.9%): a leak verdict fails a nightly build, so a healthy
device must almost never get one by chance (about 1 run in 2,000 for a two-sided 99.9% interval,
against 1 in 40 at 95%). A real leak still shows: over an 8 h soak with 1 s telemetry and the twin's
heap noise, the interval is about ±2.5 B/h wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.report.stats import SlopeFit, fit_slope
from harness.units import format_seconds

HORIZON = 365 * 86400.0
CONFIDENCE = 0.999
#: Fewer samples than this (in boots of at least MIN_BOOT_SAMPLES each) give no trend at all.
MIN_SAMPLES = 10
MIN_BOOT_SAMPLES = 3
#: A leak is claimed from MIN_SPAN of telemetry within boots, or from less when the heap would run out
#: within PROJECTION_FACTOR times the time observed (a fast leak shows in seconds; a slow fall seen for
#: a minute is as likely a buffer filling during an outage, and projecting it hours ahead is a guess).
MIN_SPAN = 600.0
PROJECTION_FACTOR = 50.0
MINUS = "\u2212"  # typographic minus, as in "-200 B/h"


@dataclass(frozen=True)
class Trend:
    """The verdict on one resource: ``leak``/``drain``, ``flat``, ``rising`` or ``unknown``."""

    name: str  # "heap" | "battery"
    unit: str  # "B" | "V"
    verdict: str
    fit: SlopeFit | None
    floor: float  # the level at which the resource is exhausted
    exhaustion_s: float | None  # seconds from the last sample until the floor, for a leak/drain
    text: str
    span_s: float = 0.0  # telemetry time within boots that the fit used (sum over boots)
    samples: int = 0  # samples the fit used
    boots: int = 0  # boots (segments) the fit used

    @property
    def slope_per_hour(self) -> float | None:
        return None if self.fit is None else self.fit.slope * 3600.0

    def as_dict(self) -> dict[str, object]:
        fit = self.fit
        return {
            "verdict": self.verdict,
            "slope_per_h": None if fit is None else fit.slope * 3600.0,
            "ci_low_per_h": None if fit is None else fit.low * 3600.0,
            "ci_high_per_h": None if fit is None else fit.high * 3600.0,
            "confidence": None if fit is None else fit.confidence,
            "samples": self.samples,
            "segments": 0 if fit is None else fit.segments,
            "span_s": self.span_s,
            "level": None if fit is None else fit.level,
            "floor": self.floor,
            "exhaustion_s": self.exhaustion_s,
            "exhaustion_days": None if self.exhaustion_s is None else self.exhaustion_s / 86400.0,
            "text": self.text,
        }


def confidence_label(confidence: float) -> str:
    """``99.9%``, ``95%``."""
    return f"{confidence * 100:.3g}%"


def format_span(seconds: float) -> str:
    """``~53 days``, ``~7.5 h``, ``~12 min``."""
    if seconds >= 2 * 86400:
        return f"~{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"~{seconds / 3600:.1f} h"
    return f"~{seconds / 60:.0f} min"


def _rate(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value:+,.0f} B/h".replace("-", MINUS)
    return f"{value * 1000:+.2f} mV/h".replace("-", MINUS)


def trend(
    telemetry: pd.DataFrame,
    column: str,
    *,
    name: str,
    unit: str,
    floor: float,
    falling: str,
    confidence: float = CONFIDENCE,
) -> Trend:
    """Fit ``column`` over time, one level per (device, boot), and judge it against ``floor``."""
    data = telemetry.dropna(subset=[column, "t"])
    if data.empty:
        return Trend(name, unit, "unknown", None, floor, None, f"{name}: no samples")
    segments = data["device"].astype(str) + "/" + data["boot_id"].astype(str)
    sizes = segments.map(segments.value_counts())
    used = data[sizes >= MIN_BOOT_SAMPLES]
    seg = segments[sizes >= MIN_BOOT_SAMPLES]
    boots = int(seg.nunique())
    span = float((used.groupby(seg)["t"].max() - used.groupby(seg)["t"].min()).sum()) if boots else 0.0
    shape = (f"{len(used)} samples in {_plural(boots, 'boot')} of {MIN_BOOT_SAMPLES}+, {format_seconds(span)}"
             if boots else f"{len(data)} samples, no boot with {MIN_BOOT_SAMPLES} or more")  # fmt: skip
    if len(used) < MIN_SAMPLES:
        return Trend(name, unit, "unknown", None, floor, None,
                     f"{name}: too few samples for a trend ({shape}; {MIN_SAMPLES} needed)",
                     span, len(used), boots)  # fmt: skip
    fit = fit_slope(used["t"].tolist(), used[column].tolist(), seg.tolist(), confidence=confidence)
    if fit is None:
        return Trend(name, unit, "unknown", None, floor, None, f"{name}: too few samples for a trend ({shape})",
                     span, len(used), boots)  # fmt: skip

    def made(verdict: str, exhaustion: float | None, text: str) -> Trend:
        return Trend(name, unit, verdict, fit, floor, exhaustion, text, span, len(used), boots)

    per_h = fit.slope * 3600.0
    ci = f"{confidence_label(confidence)} CI {_rate(fit.low * 3600, unit)} … {_rate(fit.high * 3600, unit)}"
    if fit.high < 0.0 and fit.level > floor:
        left = (fit.level - floor) / -fit.slope
        if left > HORIZON:
            return made("flat", left, f"{name} flat: {_rate(per_h, unit)} would take {format_span(left)} ({ci})")
        what = "reaches 0" if floor == 0 else f"reaches {floor:g} {unit}"
        if span < MIN_SPAN and left > PROJECTION_FACTOR * span:
            reach = "reach 0" if floor == 0 else f"reach {floor:g} {unit}"
            return made("unknown", None,
                        f"{name} falling at {_rate(per_h, unit)} ({ci}) over {format_seconds(span)} of "
                        f"{_plural(boots, 'boot')}: too short to project (it would {reach} in "
                        f"{format_span(left)}, over {PROJECTION_FACTOR:g} times the time observed; a trend "
                        f"needs {format_seconds(MIN_SPAN)} within boots, or a faster fall)")  # fmt: skip
        return made(falling, left, f"{name} {what} in {format_span(left)} at {_rate(per_h, unit)} ({ci})")
    if fit.high < 0.0:
        return made(falling, 0.0, f"{name} already at or below {floor:g} {unit} ({ci})")
    if fit.low > 0.0:
        return made("rising", None, f"{name} rising at {_rate(per_h, unit)} ({ci})")
    return made("flat", None, f"{name} flat: no trend distinguishable from zero ({ci})")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def heap_trend(telemetry: pd.DataFrame, *, confidence: float = CONFIDENCE) -> Trend:
    return trend(
        telemetry, "heap_free", name="heap", unit="B", floor=0.0, falling="leak", confidence=confidence
    )


def battery_trend(telemetry: pd.DataFrame, *, cutoff_v: float = 3.3, confidence: float = CONFIDENCE) -> Trend:
    return trend(
        telemetry,
        "battery_v",
        name="battery",
        unit="V",
        floor=cutoff_v,
        falling="drain",
        confidence=confidence,
    )
