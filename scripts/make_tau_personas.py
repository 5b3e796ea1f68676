"""Convert the 50 tau-bench airline test tasks into convsim persona files.

Usage: python scripts/make_tau_personas.py TASKS_JSON RUNS_JSON[.gz] OUT_DIR

Each task's instruction is split into the goal (what the user wants) and the persona
(sentences about how the user behaves); the user id becomes a known fact. The scripted
turns are the user side of the recorded trial-0 conversation, so a scripted user can
re-enact it deterministically. Expectations carry the task's gold actions and required
outputs for the end-state check.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

_BEHAVIOUR = re.compile(
    r"\b(reactive|impatient|patient|polite|rude|emotional|angry|upset|anxious|nervous|calm|"
    r"confident|persistent|insist\w*|frustrat\w*|friendly|cooperat\w*|busy|in a hurry|will not say|"
    r"do not prefer to provide|don't want to reveal|do not want to reveal|not good at)\b",
    re.IGNORECASE,
)
_TEMPERAMENTS = (
    "reactive",
    "impatient",
    "emotional",
    "angry",
    "upset",
    "anxious",
    "nervous",
    "calm",
    "confident",
    "persistent",
    "polite",
    "rude",
    "friendly",
    "busy",
)
_USER_ID = re.compile(r"user id is ([a-z]+_[a-z]+_\d+)", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def split_instruction(text: str) -> tuple[str, str | None, str | None]:
    """(goal, persona, user_id) from a tau-bench instruction."""
    match = _USER_ID.search(text)
    user_id = match.group(1) if match else None
    goal: list[str] = []
    persona: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        (persona if _BEHAVIOUR.search(sentence) else goal).append(sentence)
    return " ".join(goal) or text, " ".join(persona) or None, user_id


def recorded_user_turns(runs: list[dict[str, Any]], task_id: int) -> list[str]:
    """User turns of the recorded trial-0 run of a task, stop marker removed."""
    record = next(r for r in runs if r["task_id"] == task_id and r["trial"] == 0)
    turns = []
    for m in record["traj"]:
        if m["role"] == "user":
            text = m["content"].replace("###STOP###", "").strip()
            if text:
                turns.append(text)
    return turns


def main(tasks_path: str, runs_path: str, out_dir: str) -> None:
    """Write one persona file per task."""
    tasks = json.loads(Path(tasks_path).read_text())
    opener = gzip.open if runs_path.endswith(".gz") else open
    with opener(runs_path, "rt") as f:
        runs = json.load(f)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        index = task["task_index"]
        goal, persona, user_id = split_instruction(task["instruction"])
        doc: dict[str, Any] = {
            "name": f"tau-airline-{index:02d}",
            "goal": goal,
            "persona": persona,
            "known_facts": {"user_id": user_id or task["user_id"]},
            "unknown_facts": [],
            "temperament": ", ".join(
                t for t in _TEMPERAMENTS if persona and re.search(rf"\b{t}\b", persona, re.I)
            )
            or "neutral",
            "patience": 10,
            "language": "en",
            "scripted_turns": recorded_user_turns(runs, index),
            "tags": {"domain": "airline", "task": str(index)},
            "expectations": [
                {"type": "completed"},
                {"type": "end_state", "environment": "tau-airline", "actions": task["actions"]},
                {"type": "outputs_said", "outputs": task["outputs"]},
            ],
            "metadata": {
                "source": "tau-bench airline tasks_test",
                "task_index": index,
                "instruction": task["instruction"],
            },
        }
        if persona is None:
            del doc["persona"]
        path = out / f"tau-airline-{index:02d}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))
    print(f"wrote {len(tasks)} personas to {out}")  # noqa: T201 - a script's report


if __name__ == "__main__":
    main(*sys.argv[1:4])
