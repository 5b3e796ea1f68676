import types

import convsim.online


def test_all_lists_exactly_the_public_names() -> None:
    module = convsim.online
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and getattr(v, "__module__", "convsim").startswith("convsim")
        and not isinstance(v, types.ModuleType)
    }
    assert set(module.__all__) <= set(vars(module))
    assert public - set(module.__all__) == set(), "a public name must be exported deliberately"
    assert module.__all__ == sorted(module.__all__)
