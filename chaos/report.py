"""The summary of a chaos run: a plain-text table for the terminal and Markdown for results/."""

from __future__ import annotations

from typing import Any


def rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    faults = ", ".join(f"{kind} {n}" for kind, n in sorted(result.get("faults", {}).items()))
    return [
        ("seed", str(result["seed"])),
        ("coordinator kills (SIGKILL) / of them while serving",
         f"{result['kills']} / {result.get('kills_serving', '?')}"),
        ("broker restarts (down s)", f"{result['broker_restarts']} {result['broker_down_s']}"),
        ("rebalances (member joins + leaves)", str(result["rebalances"])),
        ("network faults injected", f"{result['faults_total']} ({faults})"),
        ("unexpected coordinator exits", str(sum(result["unexpected_exits"].values()))),
        ("runs started / succeeded", f"{result['runs']} / {result.get('runs_succeeded', '?')}"),
        ("triggers (expected)",
         f"{result.get('triggers', '?')} ({result.get('expected_triggers', '?')})"),
        ("duplicate triggers (by run+stage / by key)",
         f"{result.get('duplicates', '?')} / {result.get('duplicate_keys', '?')}"),
        ("missing triggers", str(result.get("missing", "?"))),
        ("changelog == replay of the event log", str(result.get("changelog_equals_replay", "?"))),
        ("settle after the chaos (s)", str(result.get("settle_s", "?"))),
        ("time (s)", str(result["seconds"])),
        ("passed", str(result["passed"])),
    ]  # fmt: skip


def table(result: dict[str, Any]) -> str:
    pairs = rows(result)
    width = max(len(name) for name, _ in pairs)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in pairs)


def markdown(result: dict[str, Any]) -> str:
    head = (
        f"Chaos run {result['when']} on {result['machine']}; size {result['size']['name']}; "
        f"`{result['command']}`; seed {result['seed']}.\n\n| measure | result |\n|---|---|\n"
    )
    body = "".join(f"| {name} | {value} |\n" for name, value in rows(result))
    problems = [
        f"- {label}: {result[key]}\n"
        for key, label in (
            ("missing_first", "missing (first)"), ("unexpected_triggers", "unexpected triggers"),
            ("unfinished_first", "unfinished runs (first)"),
            ("replay_mismatches", "changelog vs replay"), ("unexpected_exits", "unexpected exits"),
        )
        if result.get(key)
    ]  # fmt: skip
    return head + body + ("\n" + "".join(problems) if problems else "")
