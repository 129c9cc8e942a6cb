"""Gradescope's results.json (shared/reference/gradescope-moodle-formats.md §1.3)."""

from __future__ import annotations

from typing import Any

from ..result import GradeResult, ItemResult

OUTPUT_LIMIT = 100_000  # Gradescope truncates longer strings in the middle
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
        "output": clip(item.message + ("\n\n" + item.details if item.details else ""), ITEM_OUTPUT_LIMIT),
        "visibility": item.visibility,
        "tags": [item.kind],
        "extra_data": {"id": item.id, "kind": item.kind, "seconds": item.seconds, **_measured(item.data)},
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


def _measured(data: dict[str, Any]) -> dict[str, Any]:
    """Measured values only; bulky report-only data (layer lists) stays out."""
    keep = (
        "params",
        "trainable_params",
        "macs",
        "flops",
        "accuracy",
        "per_class",
        "tier",
        "images",
        "weights",
        "weights_sha256",
        "weights_chosen",
        "normalization",
        "best_class",
        "worst_class",
        "withheld_by",
        "files",
        "output_shape",
        "eval_seconds",
        "reference",
        "defined_in",
    )
    return {k: data[k] for k in keep if k in data}


def summary_lines(result: GradeResult) -> list[str]:
    lines = [f"{result.rubric_title}", f"Autograded score: {result.score:g} / {result.max_score:g}"]
    if result.manual_points:
        lines.append(f"{result.manual_points:g} more points are graded by a TA.")
    if result.fatal:
        lines.append(f"The submission could not be graded: {result.fatal}")
    failed = [i for i in result.items if i.passed is False]
    for item in failed[:6]:
        lines.append(f"✗ {item.name}: {item.message}")
    tier = (result.provenance.get("sandbox") or {}).get("tier")
    if tier == "C":
        lines.append("WARNING: graded WITHOUT a sandbox (tier C); not a security boundary.")
    for note in result.notes:
        lines.append(f"Note: {note}")
    return lines


def results_json(result: GradeResult) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "score": result.score,
        "execution_time": round(result.seconds, 2),
        "output": clip("\n".join(summary_lines(result)), 4000),
        "output_format": "simple_format",
        "test_output_format": "text",
        "stdout_visibility": "hidden",
        "tests": [test_entry(i) for i in result.items],
        "extra_data": {
            "rubric": result.rubric_id,
            "max_score": result.max_score,
            "manual_points": result.manual_points,
            "provenance": result.provenance,
            "sandbox_tier": (result.provenance.get("sandbox") or {}).get("tier"),
            "worker_output": clip(result.worker_output, 4000),
        },
    }
    if result.leaderboard:
        doc["leaderboard"] = result.leaderboard
    return doc
