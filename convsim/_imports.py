"""Resolve ``module:attr`` and ``path/to/file.py:attr`` references given on the command line."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import sysconfig
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from .errors import ConfigError

_NOT_USER_CODE = (
    str(Path(__file__).parent),
    sysconfig.get_paths()["stdlib"],
    "<frozen ",
)


def import_module(name: str) -> ModuleType:
    """Import a module by dotted name, or load a ``.py`` file by path."""
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"{name!r} not found")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        module_id = f"_convsim_user_{path.stem}_{digest}"
        if module_id in sys.modules:
            return sys.modules[module_id]
        spec = importlib.util.spec_from_file_location(module_id, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"cannot load {name!r} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_id] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as e:
            del sys.modules[module_id]
            raise _import_failure(name, e) from None
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            raise ConfigError(
                f"module {name!r} not found ({e}); is it installed or on PYTHONPATH?"
            ) from None
        raise _import_failure(name, e) from None
    except Exception as e:
        raise _import_failure(name, e) from None


def _import_failure(name: str, e: BaseException) -> BaseException:
    """The user's code failed while being imported: say where, as their error, not ours."""
    if not isinstance(e, Exception):
        return e  # Ctrl-C and SystemExit stay what they are
    if isinstance(e, SyntaxError):
        where = f"{e.filename}:{e.lineno}" if e.filename else name
        return ConfigError(f"{where}: syntax error in your code: {e.msg}")
    frames = traceback.extract_tb(e.__traceback__)
    # The innermost frame in the user's code: not convsim's loader, not the standard
    # library the user's line called into (os.environ[...] fails inside <frozen os>).
    own = [f for f in frames if not f.filename.startswith(_NOT_USER_CODE)]
    at = f"{own[-1].filename}:{own[-1].lineno}" if own else name
    return ConfigError(
        f"{at}: your code raised {type(e).__name__} while convsim imported {name!r}: {e}"
    )


def load_object(reference: str, what: str = "object") -> Any:
    """The object a ``module:attr`` or ``file.py:attr`` reference names."""
    module_name, sep, attr = reference.rpartition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(
            f"{what} {reference!r} is not understood; use module:name or file.py:name"
        )
    module = import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"{what} {reference!r}: {module_name!r} has no attribute {attr!r}"
        ) from None
