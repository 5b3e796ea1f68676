"""Tool environments by name, imported only when asked for."""

from __future__ import annotations

from collections.abc import Callable

from .._imports import load_object
from ..errors import ConfigError
from ..tools import ToolEnvironment

_ENVIRONMENTS: dict[str, str] = {
    "tau-airline": "convsim.envs.airline:AirlineEnvironment",
}


def environment_names() -> list[str]:
    """Names accepted by :func:`environment_factory`."""
    return sorted(_ENVIRONMENTS)


def register_environment(name: str, target: str) -> None:
    """Make ``module:Class`` (a zero-argument factory) available under ``name``."""
    _ENVIRONMENTS[name] = target


def environment_factory(name: str) -> Callable[[], ToolEnvironment]:
    """A factory of fresh environments for ``name``.

    ``name`` is a registered name, ``module:Factory`` or ``path/to/file.py:Factory``.
    """
    target = _ENVIRONMENTS.get(name, name)
    if ":" not in target:
        raise ConfigError(
            f"unknown environment {name!r}; choose one of {', '.join(environment_names())} "
            "or give module:Factory or file.py:Factory"
        )
    factory = load_object(target, "environment")
    if not callable(factory):
        raise ConfigError(f"environment {name!r}: {target!r} is not callable")
    return factory  # type: ignore[no-any-return]
