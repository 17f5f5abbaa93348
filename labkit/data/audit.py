"""Grade the linter against the noise we planted: what it found, what it missed, what else it flagged.

:func:`labkit.data.noise.inject` records, for every row, which kind of noise it planted (or
``None``); :func:`labkit.data.lint.lint` reports problems under the four qualities. Each kind of
noise breaks one quality (:data:`KIND_QUALITY`), so the two can be laid side by side:

>>> noisy = inject(rows, wrong=0.2, truncated=0.1, seed=0)          # doctest: +SKIP
>>> found_vs_planted(lint(noisy.rows), noisy.labels)                 # doctest: +SKIP
[{'kind': 'wrong', 'quality': 'correct', 'planted': 240, 'found': 240, 'missed': 0, 'also_flagged': 32}, ...]

``also_flagged`` counts rows flagged under the same quality that were not planted with that
kind: usually a duplicate of a damaged row (a copy of a wrong answer is wrong too), and in a real
dataset the problems nobody planted.
"""

from __future__ import annotations

from labkit.data.lint import QUALITIES, LintReport
from labkit.data.noise import KINDS

#: the quality of training data each kind of planted noise breaks
KIND_QUALITY = {"wrong": "correct", "truncated": "complete", "broken_format": "consistent",
                "duplicate": "representative"}


def found_vs_planted(report: LintReport, labels: list[str | None]) -> list[dict]:
    """One row per kind of noise: planted, found (flagged under its quality), missed, also flagged."""
    if report.n_rows != len(labels):
        raise ValueError(f"the report covers {report.n_rows} rows but there are {len(labels)} labels: "
                         "lint the same rows that inject() returned")
    out = []
    for kind in KINDS:
        quality = KIND_QUALITY[kind]
        planted = {i for i, label in enumerate(labels) if label == kind}
        flagged = report.rows_flagged(quality)
        out.append({"kind": kind, "quality": quality, "planted": len(planted), "found": len(planted & flagged),
                    "missed": len(planted - flagged), "also_flagged": len(flagged - planted)})
    return out


def _reply(row: dict) -> str:
    return next(t["content"] for t in reversed(row["messages"]) if t["role"] == "assistant")


def _question(row: dict) -> str:
    return next((t["content"] for t in reversed(row["messages"]) if t["role"] == "user"), "")


def quality_examples(noisy_rows: list[dict], labels: list[str | None], report: LintReport,
                     originals: list[dict]) -> list[dict]:
    """For each quality, the first planted row the linter flagged, beside the clean row it came from.

    ``originals`` are the rows given to ``inject`` (matched by ``id``; a duplicate's id is its
    source's plus ``-dupN``). Each entry: quality, kind, question, clean answer, planted answer,
    and the linter's message.
    """
    by_id = {row.get("id"): row for row in originals}
    messages: dict[tuple[int, str], str] = {}
    for issue in report.issues:
        if issue.row is not None:
            messages.setdefault((issue.row, issue.quality), issue.message)
    out = []
    for quality in QUALITIES:
        kind = next(k for k, q in KIND_QUALITY.items() if q == quality)
        for i, label in enumerate(labels):
            if label != kind or (i, quality) not in messages:
                continue
            row = noisy_rows[i]
            source = by_id.get(str(row.get("id", "")).split("-dup")[0])
            out.append({"quality": quality, "kind": kind, "id": row.get("id"), "question": _question(row),
                        "clean answer": _reply(source) if source else "",
                        "planted answer": _reply(row), "linter says": messages[(i, quality)]})
            break
    return out



def audit_noise(noisy, originals: list[dict]) -> dict:
    """Lint a :class:`labkit.data.noise.NoiseResult` and grade the linter against its labels:
    ``{"noise", "report", "found": found_vs_planted(...), "examples": quality_examples(...)}``."""
    from labkit.data.lint import lint

    report = lint(noisy.rows)
    return {"noise": noisy, "report": report, "found": found_vs_planted(report, noisy.labels),
            "examples": quality_examples(noisy.rows, noisy.labels, report, originals)}
