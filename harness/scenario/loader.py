"""Load a scenario file: YAML with positions -> validated model -> timeline checked against its duration.

Every problem is one line of a :class:`ConfigError` with file, line, column and field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, Location
from harness.scenario.schema import EVENT_NEEDS, STEP_NEEDS, Scenario, Step
from harness.scenario.timeline import timeline_problems
from harness.yamlfile import LocatedDocument, load_yaml, parse_dotted, parse_yaml, validate


@dataclass
class LoadedScenario:
    scenario: Scenario
    doc: LocatedDocument
    path: Path | None

    def locate(self, dotted: str) -> Location:
        return self.doc.locate(parse_dotted(dotted))

    def missing_capabilities(self, have: frozenset[str]) -> list[tuple[str, str]]:
        """(field path, capability) for every declaration, step, event or check the rig cannot serve."""
        out: list[tuple[str, str]] = []
        sc = self.scenario
        out += [(f"requires[{i}]", cap) for i, cap in enumerate(sc.requires) if cap not in have]
        if sc.network is not None and "network" not in have:
            out.append(("network", "network"))
        out += _step_needs(sc.steps, "steps", have)
        for i, ev in enumerate(sc.events):
            if EVENT_NEEDS[ev.do] not in have:
                out.append((f"events[{i}].do", EVENT_NEEDS[ev.do]))
        for i, check in enumerate(sc.checks):
            out += [(f"checks[{i}]", cap) for cap in check.spec.metric.needs if cap not in have]
        return out

    def rig_problem(self, have: frozenset[str], rig_name: str) -> ConfigError | None:
        missing = self.missing_capabilities(have)
        if not missing:
            return None
        field, cap = missing[0]
        others = sorted({c for _, c in missing} - {cap})
        also = f"; it also needs {', '.join(others)}" if others else ""
        return ConfigError(
            f"needs {cap!r}, which rig {rig_name!r} lacks (the rig has {', '.join(sorted(have)) or 'nothing'}){also}",
            self.locate(field),
        )


def _step_needs(steps: list[Step], prefix: str, have: frozenset[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, step in enumerate(steps):
        here = f"{prefix}[{i}]"
        need = STEP_NEEDS.get(step.kind)
        if need and need not in have:
            out.append((f"{here}.{step.kind}", need))
        if step.repeat is not None:
            out += _step_needs(step.repeat.steps, f"{here}.repeat.steps", have)
    return out


def load_scenario(path: str | os.PathLike[str], *, display_name: str | None = None) -> LoadedScenario:
    doc = load_yaml(path, display_name=display_name)
    return _finish(doc, Path(path))


def parse_scenario(text: str, name: str = "<scenario>") -> LoadedScenario:
    return _finish(parse_yaml(text, name), None)


def _finish(doc: LocatedDocument, path: Path | None) -> LoadedScenario:
    if not isinstance(doc.data, dict):
        raise ConfigError(
            "expected a mapping with scenario, steps, events, checks", Location(doc.file, 1, 1)
        )
    scenario = validate(doc, Scenario)
    problems = [ConfigError(message, doc.locate(parse_dotted(field))) for field, message in timeline_problems(scenario)]
    if problems:
        raise ConfigError.of(problems)
    return LoadedScenario(scenario, doc, path)
