"""Turn an agent SPEC from the command line into an :class:`Agent`.

A SPEC is one of:

* ``module:function`` or ``path/to/file.py:function``: a Python callable (sync or async)
  or an object with an async ``respond`` method, or a zero-argument factory of either;
* ``http://...`` / ``https://...``: an OpenAI-compatible chat-completions endpoint;
* ``litellm:MODEL``: a bare model, with the system prompt given separately;
* ``path/to/agent.yaml``: an agent file combining these (see :class:`AgentFile`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._imports import load_object
from .._llm import ModelClient
from .._yaml import read_yaml
from ..calls import ATTEMPT_TIMEOUT_S
from ..errors import ConfigError
from ._base import Agent
from .function import FunctionAgent
from .http import HttpAgent
from .litellm import LiteLLMAgent


class AgentFile(BaseModel):
    """An agent YAML file."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    kind: Literal["python", "http", "litellm"]
    """Which adapter to use."""
    target: str | None = None
    """For ``python``: ``module:function`` or ``file.py:function``."""
    url: str | None = None
    """For ``http``: the endpoint base URL."""
    model: str | None = None
    """For ``litellm`` (the model) and ``http`` (the model name sent in the body)."""
    system_prompt: str | None = None
    """The agent's instructions."""
    system_prompt_file: str | None = None
    """A file holding the instructions (relative to the agent file)."""
    temperature: float | None = None
    """Sampling temperature for ``litellm``."""
    api_base: str | None = None
    """Endpoint override for ``litellm``."""
    api_key_env: str | None = None
    """Environment variable holding the API key (the key itself never goes in a file)."""
    timeout: float = Field(default=ATTEMPT_TIMEOUT_S, gt=0)
    """Seconds per attempt for ``http`` (retried within the run's --call-timeout budget)."""


def load_agent(
    spec: str,
    *,
    client_factory: Callable[[], ModelClient] | None = None,
    system_prompt: str | None = None,
) -> Agent:
    """Build the agent a SPEC names.

    Raises:
        ConfigError: the spec cannot be resolved; the message says what to fix.
    """
    if spec.startswith(("http://", "https://")):
        return HttpAgent(spec, system_prompt=system_prompt)
    if spec.startswith("litellm:"):
        model = spec.removeprefix("litellm:")
        if not model:
            raise ConfigError(
                "agent spec 'litellm:' needs a model, e.g. litellm:openai/gpt-4o-mini"
            )
        return LiteLLMAgent(model, client=_client(client_factory), system_prompt=system_prompt)
    if spec.endswith((".yaml", ".yml")):
        return _from_file(Path(spec), client_factory, system_prompt)
    return _from_python(spec, system_prompt)


def agent_files(spec: str) -> list[Path]:
    """The files an agent SPEC is built from, so that no command writes over them.

    A Python file (``file.py:function``), or an agent YAML with the prompt file and
    Python file it names. A YAML that cannot be read yields only itself: building the
    agent reports what is wrong with it.
    """
    if spec.startswith(("http://", "https://", "litellm:")):
        return []
    if spec.endswith((".yaml", ".yml")):
        path = Path(spec)
        files = [path]
        try:
            f = AgentFile.model_validate(read_yaml(path, "agent"))
        except (ConfigError, ValidationError, OSError):
            return files
        if f.system_prompt_file:
            files.append(path.parent / f.system_prompt_file)
        if f.target and ".py:" in f.target:
            target = Path(f.target.split(":")[0])
            files.append(target if target.is_absolute() else path.parent / target)
        return files
    if ".py:" in spec:
        return [Path(spec.rsplit(":", 1)[0])]
    return []


def _read_text(path: Path, where: str) -> str:
    try:
        if path.is_dir():
            raise ConfigError(f"{where}: {path} is a directory; give the prompt's file")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: {path} is not UTF-8 text") from None


def _client(factory: Callable[[], ModelClient] | None) -> ModelClient:
    if factory is None:
        from .._llm import LiteLLMClient

        return LiteLLMClient()
    return factory()


def _from_file(
    path: Path, client_factory: Callable[[], ModelClient] | None, system_prompt: str | None
) -> Agent:
    data = read_yaml(path, "agent")
    try:
        f = AgentFile.model_validate(data)
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {loc}: {first['msg']}") from None
    prompt = system_prompt or f.system_prompt
    if f.system_prompt_file:
        prompt = _read_text(path.parent / f.system_prompt_file, f"{path}: system_prompt_file")
    if f.kind == "http":
        if not f.url:
            raise ConfigError(f"{path}: url: an http agent needs a url")
        return HttpAgent(
            f.url,
            model=f.model or "agent",
            system_prompt=prompt,
            api_key_env=f.api_key_env,
            timeout=f.timeout,
        )
    if f.kind == "litellm":
        if not f.model:
            raise ConfigError(f"{path}: model: a litellm agent needs a model")
        return LiteLLMAgent(
            f.model,
            client=_client(client_factory),
            system_prompt=prompt,
            temperature=f.temperature,
            api_base=f.api_base,
            api_key_env=f.api_key_env,
        )
    if not f.target:
        raise ConfigError(f"{path}: target: a python agent needs module:function")
    target = f.target
    if ".py:" in target and not Path(target.split(":")[0]).is_absolute():
        target = str(path.parent / target)
    return _from_python(target, prompt)


def _from_python(spec: str, system_prompt: str | None) -> Agent:
    if ":" not in spec:
        raise ConfigError(
            f"agent spec {spec!r} is not understood; use module:function, file.py:function, "
            "http://host/v1, litellm:MODEL or agent.yaml"
        )
    obj: Any = load_object(spec, "agent spec")
    if isinstance(obj, type) or (callable(obj) and _takes_no_arguments(obj)):
        obj = obj()  # a class or factory that builds the agent
    if hasattr(obj, "respond") and inspect.iscoroutinefunction(obj.respond):
        agent: Agent = obj
        return agent
    if callable(obj):
        return FunctionAgent(obj, system_prompt=system_prompt)
    raise ConfigError(f"agent spec {spec!r} is neither a callable nor an agent")


def _takes_no_arguments(fn: Any) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )
