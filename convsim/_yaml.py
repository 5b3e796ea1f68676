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


MAX_YAML_BYTES = 10_000_000
"""Largest YAML file convsim reads: personas, rubrics and policies are kilobytes."""

MAX_YAML_NODES = 1_000_000
"""Most values a YAML file may expand to. A handful of nested aliases (``*name``) can
expand into billions (the "billion laughs"), which would hang whatever walks the data
afterwards; real configuration files have hundreds."""


def _expanded_size(root: yaml.Node) -> int:
    """How many values a composed YAML document expands to, aliases counted each time.

    Returns -1 for a document that contains itself (an alias inside its own anchor).
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            if any(id(c) in open_nodes for c in children) or id(node) in open_nodes:
                return -1
            pending = [c for c in children if id(c) not in sizes]
            if pending:
                open_nodes.add(id(node))
                stack.append((node, True))
                stack.extend((c, False) for c in pending)
                continue
        open_nodes.discard(id(node))
        total = 1 + sum(sizes.get(id(c), 0) for c in children)
        sizes[id(node)] = total
        if total > MAX_YAML_NODES:
            return total
    return sizes[id(root)]


def read_yaml(path: str | os.PathLike[str], what: str) -> object:
    """Parse a YAML file safely: no code, a size limit, few aliases, UTF-8 text.

    Raises:
        ConfigError: naming the file and the problem (missing, a folder, too large, not
            UTF-8, not valid YAML, too many aliases).
    """
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{file}: is a directory; give the {what} file")
    try:
        size = file.stat().st_size
        if size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{file}: {size:,} bytes is too large for a {what} file "
                f"(at most {MAX_YAML_BYTES:,})"
            )
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such {what} file") from None
    except PermissionError:
        raise ConfigError(f"{file}: cannot read the {what} file (permission denied)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{file}: not a text file (not UTF-8 at byte {e.start}); give the {what} YAML"
        ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node)
        if size < 0:
            raise ConfigError(f"{file}: a value refers to itself through an alias (*name)")
        if size > MAX_YAML_NODES:
            raise ConfigError(
                f"{file}: expands to more than {MAX_YAML_NODES:,} values through its aliases "
                "(*name); convsim refuses files that could expand without bound"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        raise ConfigError(f"{file}: not valid YAML: {e}") from None
    except RecursionError:
        raise ConfigError(
            f"{file}: nested too deeply to read; a {what} file is a few levels of fields"
        ) from None
    finally:
        loader.dispose()


def load_yaml_model(path: str | os.PathLike[str], model: type[M], what: str, schema: str) -> M:
    """Parse ``path`` (see :func:`read_yaml`) and validate it as ``model``.

    Raises:
        ConfigError: one line per problem, ``file: field.path: message``, ending with a
            pointer to ``convsim schema SCHEMA``.
    """
    file = Path(path)
    data = read_yaml(file, what)
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
    # A folder named like a YAML file is a folder: its files are found by the walk.
    yield from sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
