import json

from hypothesis import HealthCheck, given, settings

from convsim.formats import conversation_from_openai, to_openai_record
from convsim.trace import Conversation
from tests.formats._roundtrip import openai_conversations


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(openai_conversations())
def test_round_trip_is_lossless(conv: Conversation) -> None:
    record = json.loads(json.dumps(to_openai_record(conv)))
    back = conversation_from_openai(record)
    assert back.model_dump(exclude={"provenance"}) == conv.model_dump(exclude={"provenance"})
