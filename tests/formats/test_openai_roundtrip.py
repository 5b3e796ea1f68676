import json

from hypothesis import HealthCheck, given, settings

from convsim.formats import conversation_from_openai
from convsim.formats.openai import export_openai
from convsim.trace import Conversation
from tests.formats._roundtrip import openai_conversations


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(openai_conversations())
def test_round_trip_is_lossless(conv: Conversation) -> None:
    """Within what Chat Completions expresses, nothing changes and nothing is reported.

    test_roundtrip_report.py covers conversations that set every field.
    """
    result = export_openai(conv)
    assert result.lost == []
    (record,) = json.loads(json.dumps(result.records))
    back = conversation_from_openai(record)
    assert back.model_dump(exclude={"provenance"}) == conv.model_dump(exclude={"provenance"})
