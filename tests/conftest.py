import os

from hypothesis import settings

# deadline=None everywhere: a loaded two-core machine makes per-example timing useless.
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=bool(os.environ.get("CI"))
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# pytester runs inner pytest sessions, for the tests of convsim's own pytest plugin.
pytest_plugins = ["pytester"]
