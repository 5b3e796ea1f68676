import random

import anyio
import pytest

from convsim.calls import RetryPolicy, TokenBucket, TransientError, redact_secrets, with_retries


def test_backoff_is_jittered_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=8.0)
    rng = random.Random(1)
    delays = [policy.delay(n, None, rng) for n in range(1, 6) for _ in range(200)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert max(delays[:200]) <= 1.0 and max(delays[800:]) > 4.0
    # Retry-After is a floor, and the cap still applies.
    assert all(policy.delay(1, 3.0, rng) >= 3.0 for _ in range(100))
    assert policy.delay(1, 60.0, rng) == 8.0


async def test_retries_transient_errors_then_succeeds() -> None:
    attempts = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("HTTP 500", retry_after=0.001)
        return "ok"

    retried: list[int] = []
    result = await with_retries(
        flaky, RetryPolicy(base_delay=0.001), on_retry=lambda n, e: retried.append(n)
    )
    assert result == "ok" and len(attempts) == 3 and retried == [1, 2]


async def test_gives_up_after_max_attempts_and_never_retries_other_errors() -> None:
    calls = 0

    async def always() -> None:
        nonlocal calls
        calls += 1
        raise TransientError("down")

    with pytest.raises(TransientError):
        await with_retries(always, RetryPolicy(max_attempts=3, base_delay=0.001))
    assert calls == 3

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise KeyError("bug")

    calls = 0
    with pytest.raises(KeyError):
        await with_retries(broken, RetryPolicy(base_delay=0.001))
    assert calls == 1


async def test_token_bucket_paces_requests() -> None:
    bucket = TokenBucket(per_minute=600)  # 10 per second, burst of 600
    bucket.level = 0
    start = anyio.current_time()
    for _ in range(5):
        await bucket.take(1)
    elapsed = anyio.current_time() - start
    assert 0.4 <= elapsed < 2.0


def test_secrets_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_API_KEY", "supersecretvalue123")
    text = "auth failed for key supersecretvalue123 and sk-abcdefghijklmnop, Bearer abc.def.ghi123"
    red = redact_secrets(text)
    assert "supersecretvalue123" not in red and "sk-abcdefghijklmnop" not in red
    assert "abc.def.ghi123" not in red
    assert "[redacted ACME_API_KEY]" in red


def test_redaction_leaves_ordinary_text_and_json_alone() -> None:
    # Words that contain a key prefix, and e-mail addresses after a URL, are not secrets.
    assert redact_secrets("task-management-notes") == "task-management-notes"
    text = '{"agent":"http://localhost:8080","source":"people@2","prompt":"help@acme.com"}'
    assert redact_secrets(text) == text
    assert redact_secrets("http://bob:hunter22@host/v1") == "http://bob:[redacted]@host/v1"


def test_the_hashed_run_config_keeps_every_field_and_loses_only_credentials() -> None:
    from convsim.runner import RunConfig

    plain = RunConfig(
        run_id="r", kind="simulate", agent="http://localhost:8080", user="litellm:openai/u",
        source="people@2", options={"system_prompt": "write to help@acme.com"},
    )  # fmt: skip
    assert plain.hashed_fields()["source"] == "people@2"
    assert plain.hashed_fields()["user"] == "litellm:openai/u"
    assert plain.hashed_fields()["options"] == {"system_prompt": "write to help@acme.com"}
    changed = plain.model_copy(update={"user": "litellm:openai/other"})
    assert changed.config_hash() != plain.config_hash()
    keyed = plain.model_copy(update={"agent": "http://me:old-password-1@localhost:8080"})
    rotated = plain.model_copy(update={"agent": "http://me:new-password-2@localhost:8080"})
    assert keyed.hashed_fields()["agent"] == "http://me:[redacted]@localhost:8080"
    assert keyed.config_hash() == rotated.config_hash()
