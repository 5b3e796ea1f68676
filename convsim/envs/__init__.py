"""Ready-made stateful tool environments, such as tau-bench's airline domain."""

from ._registry import environment_factory, environment_names, register_environment
from .airline import AirlineEnvironment

__all__ = ["AirlineEnvironment", "environment_factory", "environment_names", "register_environment"]
