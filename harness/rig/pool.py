"""Rig pools: several benches of one kind, each pytest-xdist worker claiming a free one.

A pool file names its member rigs; every member must be a bench (a twin rig already gives every
worker its own twin) and all must offer the same capabilities and speak the same device profile, so
that what a test may run does not depend on which board a worker got. ::

    pool: lab
    description: the nRF52840 boards of bench 3
    rigs: [lab3-a, lab3-b, rigs/spare/lab3-c.yaml]
    claim_timeout: 30m

Claiming is :mod:`harness.rig.claim`; the reference is ``docs/rigs.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness.fieldtypes import Duration
from harness.rig.spec import RigSpec

DEFAULT_CLAIM_TIMEOUT = 1800.0


class RigPoolSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: str = Field(description="the pool's name, shown in reports and claim messages")
    description: str = ""
    rigs: list[str] = Field(description="member rigs: names (rigs/NAME.yaml) or paths to rig files")
    claim_timeout: Duration = Field(default=DEFAULT_CLAIM_TIMEOUT, description="how long a worker waits for a rig")

    @field_validator("rigs")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("expected at least one rig, got an empty list")
        return value


@dataclass(frozen=True)
class Member:
    spec: RigSpec
    source: str


@dataclass(frozen=True)
class RigChoice:
    """What ``--rig`` named: one rig (a pool of one, nothing to choose) or a pool of benches."""

    members: list[Member]
    pool: str | None = None
    source: str = ""
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT

    @property
    def first(self) -> Member:
        return self.members[0]

    @property
    def name(self) -> str:
        return self.pool or self.first.spec.name
