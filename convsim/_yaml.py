"""Load YAML files into pydantic models with errors that name the file and the field."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: str | os.PathLike[str], model: type[M], what: str, schema: str) -> M:
    """Parse ``path`` and validate it as ``model``.

    Raises:
        ConfigError: one line per problem, ``file: field.path: message``, ending with a
            pointer to ``convsim schema SCHEMA``.
    """
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such {what} file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: a {what} file must hold a mapping of fields")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_url=False):
            loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
            problems.append(f"{file}: {loc}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError(
            "\n".join(problems) + f"\n(see `convsim schema {schema}` for the fields)"
        ) from None


def iter_yaml_files(path: str | os.PathLike[str], what: str) -> Iterator[Path]:
    """The YAML files under ``path`` (a file, or a folder searched recursively)."""
    root = Path(path)
    if root.is_file():
        yield root
        return
    if not root.is_dir():
        raise ConfigError(f"{root}: no such {what} file or folder")
    yield from sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))
