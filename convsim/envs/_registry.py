"""Tool environments by name, imported only when asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable

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
    """A factory of fresh environments for ``name`` (a registered name or ``module:attr``)."""
    target = _ENVIRONMENTS.get(name, name)
    module_name, sep, attr = target.partition(":")
    if not sep:
        raise ConfigError(
            f"unknown environment {name!r}; choose one of {', '.join(environment_names())} "
            "or give module:Factory"
        )
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"environment {name!r}: cannot load {target!r} ({e})") from None
    if not callable(factory):
        raise ConfigError(f"environment {name!r}: {target!r} is not callable")
    return factory  # type: ignore[no-any-return]
