"""JSON Schemas of convsim's file formats, by name (``convsim schema NAME``)."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel

from .errors import ConfigError

_MODELS: dict[str, tuple[str, str]] = {
    "trace": ("convsim.trace", "Conversation"),
    "score": ("convsim.trace", "Score"),
    "score-failure": ("convsim.trace", "ScoreFailure"),
    "case": ("convsim.datasets", "EvalCase"),
    "run": ("convsim.store", "RunRecord"),
    "result": ("convsim.store", "ConversationResult"),
    "persona": ("convsim.users", "Persona"),
    "rubric": ("convsim.graders", "Rubric"),
    "checks": ("convsim.grade", "ChecksConfig"),
    "agent": ("convsim.agents", "AgentFile"),
    "policy": ("convsim.online", "SamplingPolicy"),
    "census": ("convsim.online", "Census"),
}


def schema_names() -> list[str]:
    """Names accepted by :func:`json_schema`."""
    return sorted(_MODELS)


def register_schema(name: str, module: str, attr: str) -> None:
    """Make a model's schema printable as ``convsim schema NAME`` (imported lazily)."""
    _MODELS[name] = (module, attr)


def json_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one of convsim's file formats."""
    try:
        module, attr = _MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown schema {name!r}; choose one of: {', '.join(schema_names())}"
        ) from None
    model = getattr(importlib.import_module(module), attr)
    assert isinstance(model, type) and issubclass(model, BaseModel)
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
