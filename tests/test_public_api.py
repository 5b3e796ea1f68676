import importlib
import types

import pytest

import convsim

PACKAGES = [
    "convsim.agents",
    "convsim.calls",
    "convsim.datasets",
    "convsim.envs",
    "convsim.envs.airline",
    "convsim.formats",
    "convsim.gate",
    "convsim.graders",
    "convsim.online",
    "convsim.reports",
    "convsim.runner",
    "convsim.stats",
    "convsim.store",
    "convsim.testing",
    "convsim.tools",
    "convsim.trace",
    "convsim.users",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", name).startswith("convsim")
        and not isinstance(v, types.ModuleType)
    }
    exported = set(module.__all__)
    assert exported <= set(vars(module)), "everything in __all__ must exist"
    assert public - exported == set(), "a public name must be exported deliberately"
    assert module.__all__ == sorted(module.__all__, key=lambda s: (not s.isupper(), s))


def test_root_exports_resolve_lazily_and_match_all() -> None:
    import subprocess
    import sys

    lazy = set(convsim._LAZY)
    assert set(convsim.__all__) == lazy | {"__version__"}
    assert convsim.__all__ == sorted(convsim.__all__, key=lambda s: (not s.isupper(), s))
    for name in convsim.__all__:
        assert getattr(convsim, name) is not None
    code = "import sys, convsim; print('pydantic' in sys.modules, 'anyio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_version() -> None:
    assert convsim.__version__.count(".") == 2
