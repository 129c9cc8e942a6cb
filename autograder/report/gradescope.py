"""Gradescope's results.json (its autograder specification: score, tests, visibility, output)."""

from __future__ import annotations

from typing import Any

from .. import untrusted
from ..checks.registry import measured_data
from ..result import GradeResult, ItemResult

ITEM_OUTPUT_LIMIT = 8_000


def clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = (limit - 40) // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def test_entry(item: ItemResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": item.name,
        "number": item.number,
        "output": clip(
            untrusted.text_block(item.message + ("\n\n" + item.details if item.details else "")),
            ITEM_OUTPUT_LIMIT,
        ),
        "visibility": item.visibility,
        "tags": [item.kind],
        "extra_data": {
            "id": item.id,
            "kind": item.kind,
            "seconds": item.seconds,
            **measured_data(item.kind, item.data),
        },
    }
    if item.manual:
        entry["name"] = f"{item.name} (graded by a TA: {item.max_points:g} points)"
        entry["extra_data"]["manual"] = True
        entry["extra_data"]["max_points"] = item.max_points
    else:
        entry["score"] = item.score
        entry["max_score"] = item.max_points
        entry["status"] = "passed" if item.passed else "failed"
    return entry


WHEN = {
    "after_due_date": "after the due date",
    "after_published": "when grades are published",
    "hidden": "to the course staff only",
}


def summary_lines(result: GradeResult) -> list[str]:
    """The few lines at the top of a Gradescope result. Students see them at once, so
    results that the rubric shows only later (test accuracy) are neither listed nor
    folded into a total here."""
    lines = [f"{result.rubric_title}"]
    later = [i for i in result.items if i.visibility != "visible" and not i.manual]
    if later:
        shown = [i for i in result.items if i.visibility == "visible" and not i.manual]
        got, out_of = sum(i.score or 0.0 for i in shown), sum(i.max_points for i in shown)
        passed = sum(1 for i in shown if i.passed)
        points = f", {got:g} / {out_of:g} points" if out_of else ""
        lines.append(f"Checks shown now: {passed} of {len(shown)} passed{points}")
        for visibility, words in WHEN.items():
            group = [i for i in later if i.visibility == visibility]
            if group:
                points = sum(i.max_points for i in group)
                lines.append(
                    f"{len(group)} more result{'s' if len(group) > 1 else ''} ({points:g} points) "
                    f"appear {words}: {', '.join(i.name for i in group)}"
                )
    else:
        lines.append(f"Autograded score: {result.score:g} / {result.max_score:g}")
    if result.manual_points:
        lines.append(f"{result.manual_points:g} more points are graded by a TA.")
    if result.fatal:
        lines.append(f"The submission could not be graded: {untrusted.terminal(result.fatal)}")
    failed = [i for i in result.items if i.passed is False and i.visibility == "visible"]
    for item in failed[:6]:
        lines.append(f"✗ {item.name}: {untrusted.terminal(item.message)}")
    if len(failed) > 6:
        lines.append(f"… and {len(failed) - 6} more failed checks (see below)")
    if not failed and not result.fatal:
        lines.append("✓ every check shown now passed")
    tier = (result.provenance.get("sandbox") or {}).get("tier")
    if tier == "C":
        lines.append("WARNING: graded WITHOUT a sandbox (tier C); not a security boundary.")
    for note in result.notes:
        lines.append(f"Note: {untrusted.terminal(note)}")
    return lines


def results_json(result: GradeResult) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "score": result.score,
        "execution_time": round(result.seconds, 2),
        "output": clip(untrusted.text_block("\n".join(summary_lines(result))), 4000),
        "output_format": "text",
        "test_output_format": "text",
        "stdout_visibility": "hidden",
        "tests": [test_entry(i) for i in result.items],
        "extra_data": {
            "rubric": result.rubric_id,
            "max_score": result.max_score,
            "manual_points": result.manual_points,
            "provenance": result.provenance,
            "sandbox_tier": (result.provenance.get("sandbox") or {}).get("tier"),
            "worker_output": clip(untrusted.text_block(result.worker_output), 4000),
        },
    }
    if result.leaderboard:
        doc["leaderboard"] = result.leaderboard
    return doc
