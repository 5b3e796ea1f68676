import json
from pathlib import Path

import pytest

from convsim.errors import TraceImportError
from convsim.formats import detect_format, read_auto
from tests.formats._helpers import DATA, load_records, run_import


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("otel_travel.json", "otel"),
        ("anthropic_travel.jsonl", "anthropic"),
        ("responses_travel.jsonl", "responses"),
        ("openinference_travel.jsonl", "openinference"),
        ("langsmith_travel.jsonl", "langsmith"),
        ("langfuse_travel.json", "langfuse"),
    ],
)
def test_each_golden_file_is_detected_and_imports_the_same(name: str, fmt: str) -> None:
    assert detect_format(DATA / name)[0] == fmt
    direct, report, _ = run_import(fmt, DATA / name)
    auto, auto_report, _ = run_import("auto", DATA / name)
    assert auto == direct and (auto_report.read, auto_report.kept) == (report.read, report.kept)


def test_openai_and_tau_bench_records(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert detect_format(path) == ("openai", 1)
    path.write_text(json.dumps([{"role": "user", "content": "hi"}]))
    assert detect_format(path) == ("openai", 1)
    path.write_text(json.dumps([{"task_id": 1, "trial": 0, "reward": 1, "traj": []}]))
    assert detect_format(path) == ("tau-bench", 1)


def test_unknown_format_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mystery.jsonl"
    path.write_text('{"hello": "world"}\n[1, 2]\n')
    with pytest.raises(TraceImportError, match=r"mystery\.jsonl: cannot tell the trace format"):
        detect_format(path)


def test_records_of_another_format_are_rejected_by_name(tmp_path: Path) -> None:
    anthropic = load_records("anthropic_travel.jsonl")
    responses = load_records("responses_travel.jsonl")
    lines = [anthropic[0], responses[0], anthropic[1], responses[5]]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    convs, report, rejected = run_import("auto", path)
    assert len(convs) == 2 and all(
        c.provenance and c.provenance.source_file == str(path) for c in convs
    )
    assert (report.read, report.kept, report.rejected) == (4, 2, 2)
    assert [i.line for i in report.issues] == [2, 4]
    assert all(i.file == str(path) and "looks like responses" in i.message for i in report.issues)
    assert "detected from line 1" in report.issues[0].message
    assert [json.loads(r)["id"] for r in rejected] == ["resp_01", "resp_10"]
    assert report.notes and all(n.file == str(path) for n in report.notes)


def test_mixed_json_array_keeps_record_numbers(tmp_path: Path) -> None:
    traces = load_records("langfuse_travel.json")
    stray = load_records("langsmith_travel.jsonl")[0]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps([traces[0], stray, traces[1]]))
    report_convs, report, _ = run_import("auto", path)
    (issue,) = report.issues
    assert issue.in_array and issue.line == 2 and "looks like langsmith" in issue.message
    assert str(issue).startswith(f"{path}: record 2: ")
    assert len(report_convs) == 1


def test_read_auto_is_an_importer(tmp_path: Path) -> None:
    from convsim.datasets import ReadReport

    report = ReadReport(file="x")
    assert len(list(read_auto(DATA / "langfuse_travel.json", report=report))) == 1
