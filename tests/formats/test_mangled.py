"""Every importer survives mangled input: counts add up and what it keeps is valid."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convsim.trace import Conversation
from tests.formats._helpers import load_records, mangled_file, run_import

# The golden input each mangled file is made from.
GOLDEN = {
    "anthropic": "anthropic_travel.jsonl",
    "langfuse": "langfuse_travel.json",
    "langsmith": "langsmith_travel.jsonl",
    "openinference": "openinference_travel.jsonl",
    "otel": "otel_travel.json",
    "responses": "responses_travel.jsonl",
}


@pytest.mark.parametrize("fmt", sorted(GOLDEN))
@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(data=st.data())
def test_mangled_input_never_crashes(
    fmt: str, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    as_array = data.draw(st.booleans())
    blob = data.draw(mangled_file(load_records(GOLDEN[fmt]), as_array))
    path = tmp_path_factory.mktemp("fz") / ("m.json" if as_array else "m.jsonl")
    path.write_bytes(blob or b"x")
    # run_import checks that read = kept + rejected and that every kept record arrived.
    convs, _, _ = run_import(fmt, path)
    for c in convs:
        Conversation.model_validate(c.model_dump())
