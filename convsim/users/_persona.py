"""Personas: who the simulated user is, what they want, and what they know."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from .._yaml import iter_yaml_files, load_yaml_model
from ..errors import ConfigError

_CONFIG = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _empty(value: object) -> bool:
    return not value


class StopRules(BaseModel):
    """When the simulated user ends the conversation."""

    model_config = _CONFIG

    on_goal_met: bool = True
    """Stop once the goal is achieved (and the agent has confirmed it is done)."""
    on_transfer: bool = True
    """Stop when the agent hands over to a human."""
    phrases: list[str] = Field(default_factory=list)
    """Stop as soon as the agent says one of these (case-insensitive substrings)."""


class Persona(BaseModel):
    """A simulated user, loaded from ``personas/*.yaml``.

    The goal (what the user wants from this conversation) is kept apart from the persona
    (who they are), so one person can be given many goals and one goal many people.
    """

    model_config = _CONFIG

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    """Stable identifier, used as the case id and in cohort tags."""
    goal: str = Field(min_length=1)
    """What the user wants to achieve, in the second person ("You want to ...")."""
    scenario: str | None = None
    """Background to the goal: why they are calling, what happened before."""
    persona: str | None = None
    """Who the user is: a short description of the person."""
    known_facts: dict[str, str] = Field(default_factory=dict)
    """Facts the user knows and reveals only when asked (e.g. ``user_id``)."""
    unknown_facts: list[str] = Field(default_factory=list)
    """Things the user does not know; they say so rather than invent an answer."""
    temperament: str = "neutral"
    """How they react: e.g. patient, impatient, anxious, angry, friendly."""
    style: str = "concise"
    """How they write: e.g. concise, verbose, informal, all lower-case."""
    patience: Annotated[int, Field(ge=1, le=50)] = 6
    """Agent turns tolerated without progress before giving up."""
    language: str = "en"
    """Language the user writes in (BCP 47 tag)."""
    expertise: Literal["novice", "intermediate", "expert"] = "intermediate"
    """How familiar the user is with the domain."""
    stop: StopRules = Field(default_factory=StopRules)
    """When to end the conversation."""
    scripted_turns: list[str] = Field(default_factory=list, exclude_if=_empty)
    """Optional fixed user turns, used by the scripted user instead of a model."""
    tags: dict[str, str] = Field(default_factory=dict, exclude_if=_empty)
    """Cohort keys for drill-downs (vertical, language, persona type, ...)."""
    expectations: list[dict[str, JsonValue]] = Field(default_factory=list, exclude_if=_empty)
    """Outcome checks that grade conversations with this persona."""
    metadata: dict[str, JsonValue] = Field(default_factory=dict, exclude_if=_empty)
    """Anything else, e.g. the source task id."""


def load_persona(path: str | os.PathLike[str]) -> Persona:
    """Load and validate one persona file.

    Raises:
        ConfigError: naming the file and the field path of every problem.
    """
    return load_yaml_model(path, Persona, "persona", "persona")


def iter_persona_files(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The persona files under ``path`` (a file, or a folder searched recursively)."""
    return iter_yaml_files(path, "persona")


def load_personas(path: str | os.PathLike[str]) -> list[Persona]:
    """Load every persona under ``path``; names must be unique.

    Raises:
        ConfigError: listing every invalid file (all are checked, not just the first).
    """
    personas: list[Persona] = []
    errors: list[str] = []
    seen: dict[str, Path] = {}
    for file in iter_persona_files(path):
        try:
            persona = load_persona(file)
        except ConfigError as e:
            errors.append(str(e))
            continue
        if persona.name in seen:
            errors.append(f"{file}: name: {persona.name!r} is already used by {seen[persona.name]}")
            continue
        seen[persona.name] = file
        personas.append(persona)
    if errors:
        raise ConfigError("\n".join(errors))
    if not personas:
        raise ConfigError(f"{path}: no persona files (*.yaml) found")
    return personas
