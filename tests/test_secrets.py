"""Keys never reach results, stores or reports, whatever their variable is called.

An endpoint that echoes the caller's credentials in its error bodies (as some providers
and proxies do), reached with a key in a custom variable (``api_key_env``) and with
credentials in the URL; every command that talks to it; then every file left behind,
the SQLite stores and the HTML reports included, is searched for the secrets.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from convsim.cli import cli

ROOT = Path(__file__).parents[1]
ENV_KEY = "acme-credential-7f3k9q2m1x8v4b6n"  # no known key shape: only its variable tells
URL_PASSWORD = "url-password-5t8w2e6r"
JUDGE_KEY = "judge-key-3j7h1g5f9d2s"


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        auth = self.headers.get("authorization", "")
        if auth.startswith("Basic "):
            auth += " = " + base64.b64decode(auth.removeprefix("Basic ")).decode()
        body = json.dumps({"error": {"message": f"invalid credentials: {auth}"}}).encode()
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(*args: str, env: dict[str, str]) -> None:
    r = CliRunner().invoke(cli, list(args), env=env)
    assert r.exit_code in (0, 1), r.output
    for secret in (ENV_KEY, URL_PASSWORD, JUDGE_KEY):
        assert secret not in r.output


def test_keys_in_custom_variables_and_urls_never_reach_any_output(
    echo: str, tmp_path: Path
) -> None:
    env = {"ACME_CREDENTIAL": ENV_KEY, "OPENAI_API_KEY": JUDGE_KEY}
    agent_file = tmp_path / "agent.yaml"
    agent_file.write_text(
        f"kind: http\nurl: http://{echo}/v1\nmodel: m\napi_key_env: ACME_CREDENTIAL\ntimeout: 5\n"
    )
    url_agent = f"http://user:{URL_PASSWORD}@{echo}/v1"
    personas = str(ROOT / "examples" / "personas")
    store = str(tmp_path / "store.db")
    for name, agent in (("keyed", str(agent_file)), ("url", url_agent)):
        run(
            "simulate", "--agent", agent, "--personas", personas,
            "--out", str(tmp_path / f"{name}.jsonl"), "--store", store, "--json",
            str(tmp_path / f"{name}.summary.json"), "--no-progress", env=env,
        )  # fmt: skip
    traces = tmp_path / "traces.jsonl"
    run("import", "tau-bench", str(ROOT / "convsim/_assets/tau_bench/gpt-4o-airline.json.gz"),
        "--out", str(traces), env=env)  # fmt: skip
    small = tmp_path / "few.jsonl"
    small.write_text("".join(traces.read_text().splitlines(keepends=True)[:3]))
    run(
        "replay", str(small), "--agent", url_agent, "--out", str(tmp_path / "replay.jsonl"),
        "--store", store, "--html", str(tmp_path / "replay.html"), "--no-progress", env=env,
    )  # fmt: skip
    judge_base = f"http://judge:{URL_PASSWORD}@{echo}/v1"
    run(
        "grade", str(small), "--rubrics", str(ROOT / "rubrics" / "goal_completion.yaml"),
        "--judge-model", "openai/judge", "--judge-api-base", judge_base,
        "--out", str(tmp_path / "grade.jsonl"), "--cache", str(tmp_path / "cache.db"), env=env,
    )  # fmt: skip
    run(
        "online", str(small), "--policy", str(ROOT / "examples" / "sampling.yaml"),
        "--window", "w1", "--rubrics", str(ROOT / "rubrics" / "goal_completion.yaml"),
        "--judge-model", "openai/judge", "--judge-api-base", judge_base, "--store", store,
        "--out", str(tmp_path / "online.jsonl"), "--json", str(tmp_path / "online.json"), env=env,
    )  # fmt: skip
    # The errors were real and recorded: the point is that they carry no secret.
    results = (tmp_path / "keyed.jsonl").read_text()
    assert "invalid credentials" in results and "[redacted ACME_CREDENTIAL]" in results
    assert "[redacted]" in (tmp_path / "url.jsonl").read_text()
    failures = (tmp_path / "grade.jsonl.failures.jsonl").read_text()
    assert failures.strip()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {"store.db", "replay.html", "cache.db"} <= {p.name for p in files}
    for path in files:
        data = path.read_bytes()
        for secret in (ENV_KEY, URL_PASSWORD, JUDGE_KEY):
            assert secret.encode() not in data, f"{secret} leaked into {path.name}"
