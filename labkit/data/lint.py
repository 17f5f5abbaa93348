"""A dataset linter for the four qualities the seed asks of fine-tuning data.

* **correct** - every row is well-formed, JSON answers follow the schema, and where the truth is
  knowable (a Northwind formulary question) the answer matches it; one question never gets two
  different answers;
* **complete** - no empty, cut-off or field-missing answers;
* **consistent** - one answer format and one system prompt per kind of question;
* **representative** - every category present in a fair share, no duplicates, no answer value
  that drowns the others, no wild length outliers.

:func:`lint` never raises on bad rows: it reports each one with ``file:line`` (or ``row i`` for
in-memory rows) and keeps going, so a learner sees every problem at once.
"""

from __future__ import annotations

import html
import json
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from labkit.data.chat import DataError, validate_messages

QUALITIES = ("correct", "complete", "consistent", "representative")
_END = tuple(".!?)]}\"'")


@dataclass
class Issue:
    quality: str
    where: str
    message: str
    row: int | None = None  # index into the parsed rows, None for a line that did not parse


@dataclass
class LintReport:
    source: str
    n_rows: int
    issues: list[Issue] = field(default_factory=list)
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(i.quality for i in self.issues)
        return {q: counts.get(q, 0) for q in QUALITIES}

    def rows_flagged(self, quality: str | None = None) -> set[int]:
        return {i.row for i in self.issues if i.row is not None and (quality is None or i.quality == quality)}

    def __str__(self, limit: int = 5) -> str:
        lines = [f"lint {self.source}: {self.n_rows} rows, {len(self.issues)} issues"]
        for quality in QUALITIES:
            found = [i for i in self.issues if i.quality == quality]
            lines.append(f"  {quality:<15} {'ok' if not found else f'{len(found)} issue(s)'}")
            lines += [f"      {i.where}: {i.message}" for i in found[:limit]]
            if len(found) > limit:
                lines.append(f"      ... and {len(found) - limit} more")
        if self.stats.get("categories"):
            lines.append("  categories: " + ", ".join(f"{k} {v}" for k, v in self.stats["categories"].items()))
        if self.stats.get("reply_chars"):
            lo, mid, hi = self.stats["reply_chars"]
            lines.append(f"  answer length (chars): min {lo}, median {mid}, max {hi}")
        return "\n".join(lines)

    def _repr_html_(self, limit: int = 8) -> str:
        parts = [f"<b>Lint</b> {html.escape(self.source)}: {self.n_rows} rows, {len(self.issues)} issues<table>"
                 "<tr><th>quality</th><th>issues</th><th>examples</th></tr>"]
        for quality in QUALITIES:
            found = [i for i in self.issues if i.quality == quality]
            examples = "<br>".join(html.escape(f"{i.where}: {i.message}") for i in found[:limit])
            mark = "✅ 0" if not found else f"⚠️ {len(found)}"
            parts.append(f"<tr><td>{quality}</td><td>{mark}</td><td style='text-align:left'>{examples}</td></tr>")
        parts.append("</table>")
        if self.stats.get("categories"):
            parts.append("categories: " + html.escape(", ".join(f"{k} {v}" for k, v in self.stats["categories"].items())))
        return "".join(parts)


@dataclass
class _Row:
    index: int
    where: str
    row: dict
    group: str = ""
    user: str = ""
    system: str | None = None
    reply: str = ""
    fmt: str = "text"  # json | wrapped-json | bad-json | text
    obj: dict | None = None


def _read(source, issues: list[Issue]) -> tuple[str, list[tuple[str, dict]]]:
    """Parse rows, turning every unreadable line into an issue instead of an exception."""
    if not isinstance(source, (str, Path)):
        return "<rows>", [(f"row {i}" + (f" ({r['id']})" if isinstance(r, dict) and "id" in r else ""), r)
                          for i, r in enumerate(source)]
    path = Path(source)
    if not path.is_file():
        issues.append(Issue("correct", str(path), "no such file"))
        return str(path), []
    out = []
    for lineno, raw in enumerate(path.read_bytes().splitlines(), start=1):
        where = f"{path}:{lineno}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            issues.append(Issue("correct", where, f"not UTF-8 (byte {exc.start} of the line)"))
            continue
        if not line.strip():
            continue
        try:
            out.append((where, json.loads(line)))
        except json.JSONDecodeError as exc:
            issues.append(Issue("correct", where, f"not valid JSON ({exc.msg} at column {exc.colno})"))
    return str(path), out


def _classify(r: _Row) -> None:
    text = r.reply.strip()
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            r.fmt, r.obj = "json", obj
            return
    except json.JSONDecodeError:
        pass
    if text.startswith("{"):
        r.fmt = "bad-json"
    elif "{" in text and "}" in text:
        r.fmt = "wrapped-json"
    else:
        r.fmt = "text"


def lint(rows_or_path, schema: dict | None = None, formulary=None, min_share: float = 0.05) -> LintReport:
    """Check a chat dataset (a JSONL path or a list of rows) and return a readable report.

    Args:
        schema: ``{category: {field: allowed values | "integer"}}``. Default: the formulary's
            :data:`~labkit.data.formulary.ANSWER_SCHEMA` for rows whose category it knows.
        formulary: a :class:`~labkit.data.formulary.Formulary` used to check answers against the
            truth (default: the shipped one, seed 0; ``False`` skips the truth check).
        min_share: a category with less than this share of the rows is reported as under-covered.
    """
    from labkit.data import formulary as fx_module

    schema = fx_module.ANSWER_SCHEMA if schema is None else schema
    fx = formulary if formulary is not None else fx_module.build(0)
    issues: list[Issue] = []
    source, raw_rows = _read(rows_or_path, issues)
    rows: list[_Row] = []
    for index, (where, row) in enumerate(raw_rows):
        try:
            if not isinstance(row, dict) or "messages" not in row:
                raise DataError(f"{where}: expected an object with 'messages'")
            validate_messages(row["messages"], where)
        except DataError as exc:
            issues.append(Issue("correct", where, str(exc).removeprefix(f"{where}: "), index))
            continue
        turns = row["messages"]
        last = max(i for i, t in enumerate(turns) if t["role"] == "assistant")
        r = _Row(index, where, row,
                 group=str(row.get("category", "")) + (f"/{row['subject']}" if "subject" in row else ""),
                 user=next((t["content"] for t in reversed(turns[:last]) if t["role"] == "user"), ""),
                 system=next((t["content"] for t in turns if t["role"] == "system"), None),
                 reply=turns[last]["content"])
        _classify(r)
        rows.append(r)
    if not raw_rows:
        issues.append(Issue("representative", source, "the dataset is empty"))

    groups: dict[str, list[_Row]] = defaultdict(list)
    for r in rows:
        groups[r.group].append(r)
    for rs in groups.values():
        _check_group(rs, schema.get(rs[0].row.get("category")), fx, issues)
    _check_dataset(rows, schema, min_share, issues)
    issues.sort(key=lambda i: (QUALITIES.index(i.quality), i.row if i.row is not None else -1))
    lengths = sorted(len(r.reply) for r in rows)
    stats = {
        "categories": dict(Counter(r.row.get("category", "(none)") for r in rows)),
        "formats": dict(Counter(r.fmt for r in rows)),
        "reply_chars": (lengths[0], int(statistics.median(lengths)), lengths[-1]) if lengths else None,
    }
    return LintReport(source, len(raw_rows), issues, stats)


def _shape(text: str) -> str:
    """A coarse style signature of a free-text answer: bullets, a shouted label, capitals, or plain."""
    if re.match(r"^\s*([-*•]|\d+[.)])\s", text):
        return "bullets"
    if re.match(r"^[A-Z][A-Z ]+\s*(>>|=>|:|-)", text):
        return "label"
    if len(text) > 8 and text.isupper():
        return "capitals"
    return "multi-line" if "\n" in text.strip() else "plain"


def _check_group(rs: list[_Row], spec: dict | None, fx, issues: list[Issue]) -> None:
    """Checks within one kind of question (same category / subject)."""
    add = lambda q, r, msg: issues.append(Issue(q, r.where, msg, r.index))  # noqa: E731
    usual_fmt = Counter(r.fmt for r in rs).most_common(1)[0][0]
    texts = [r for r in rs if r.fmt == "text"]
    usual_shape = Counter(_shape(r.reply) for r in texts).most_common(1)[0][0] if texts else ""
    json_rows = [r for r in rs if r.obj is not None]
    usual_keys = Counter(tuple(r.obj) for r in json_rows).most_common(1)[0][0] if json_rows else ()
    systems = Counter(r.system for r in rs)
    usual_system = systems.most_common(1)[0][0]
    # Measured on the answers of the usual shape, so planted noise cannot switch the check off.
    plain = [r for r in texts if _shape(r.reply) == usual_shape] or rs
    ends = sum(r.reply.rstrip().endswith(_END) for r in plain) / len(plain)
    median_len = statistics.median(len(r.reply) for r in plain)
    for r in rs:
        text = r.reply.strip()
        if not text:
            add("complete", r, "the answer is empty")
            continue
        if r.fmt == "bad-json" and text.count("{") > text.count("}"):
            add("complete", r, f"the JSON answer is cut off: {_short(text)}")
            continue
        if r.fmt != usual_fmt:
            kind = {"bad-json": "not valid JSON", "wrapped-json": "JSON wrapped in other text",
                    "text": "plain text", "json": "JSON"}[r.fmt]
            add("consistent", r, f"{kind} where the others are {usual_fmt}: {_short(text)}")
            continue
        if r.fmt == "text":
            shape = _shape(r.reply)
            if shape != usual_shape:
                add("consistent", r, f"styled as {shape} where the others are {usual_shape}: {_short(text)}")
                continue
            if ends >= 0.6 and not text.endswith(_END):
                add("complete", r, f"the answer stops mid-sentence: {_short(text)}")
                continue
            if len(rs) >= 10 and len(text) < 0.4 * median_len:
                add("complete", r, f"much shorter than similar answers: {_short(text)}")
                continue
        if r.system != usual_system and len(systems) > 1:
            add("consistent", r, f"system prompt differs from the usual one: {_short(r.system or '(none)')}")
        if r.obj is not None:
            keys = tuple(r.obj)
            if spec is not None:
                missing = [k for k in spec if k not in r.obj]
                extra = [k for k in r.obj if k not in spec]
                if extra:
                    add("consistent", r, f"unexpected key(s) {', '.join(extra)}; the schema has {', '.join(spec)}")
                    continue
                if missing:
                    add("complete", r, f"missing field(s) {', '.join(missing)}")
                    continue
                bad = [k for k, allowed in spec.items() if not _allowed(r.obj[k], allowed)]
                if bad:
                    add("correct", r, "value(s) outside the schema: " + ", ".join(f"{k}={r.obj[k]!r}" for k in bad))
                    continue
            elif keys != usual_keys:
                add("consistent", r, f"keys {', '.join(keys)} differ from the usual {', '.join(usual_keys)}")
                continue
        _check_truth(r, fx, add)


def _allowed(value, allowed) -> bool:
    if allowed == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return value in allowed if isinstance(allowed, (list, tuple)) else True


def _check_truth(r: _Row, fx, add) -> None:
    """Compare with the formulary when the question is about formulary drugs."""
    category = r.row.get("category")
    if not fx or category not in ("interaction", "dosing", "profile"):
        return
    from labkit.data.formulary import read_text_answer

    drugs = fx.find_drugs(r.user)
    if len(drugs) != (2 if category == "interaction" else 1):
        return
    strangers = [d for d in fx.find_drugs(r.reply) if d not in drugs]
    if strangers:
        add("correct", r, f"the answer names {', '.join(strangers)}, which the question does not ask about")
        return
    truth = fx.answer(category, drugs)
    said = r.obj if r.obj is not None else read_text_answer(category, r.reply)
    wrong = {k: v for k, v in truth.items() if said.get(k) != v}
    if wrong:
        add("correct", r, "disagrees with the formulary: expected " + ", ".join(f"{k}={v!r}" for k, v in wrong.items()))


def _check_dataset(rows: list[_Row], schema: dict, min_share: float, issues: list[Issue]) -> None:
    """Checks across the whole dataset: conflicts, duplicates, coverage, balance, outliers."""
    first_seen: dict[tuple[str, str], _Row] = {}
    answers: dict[str, dict[str, _Row]] = defaultdict(dict)
    ids: dict[str, _Row] = {}
    for r in rows:
        key = (r.user.strip(), r.reply.strip())
        if key in first_seen:
            issues.append(Issue("representative", r.where, f"duplicate of {first_seen[key].where}", r.index))
        else:
            first_seen[key] = r
        answers[r.user.strip()].setdefault(r.reply.strip(), r)
        rid = r.row.get("id")
        if rid is not None and rid in ids:
            issues.append(Issue("correct", r.where, f"id {rid!r} already used at {ids[rid].where}", r.index))
        elif rid is not None:
            ids[rid] = r
    for question, replies in answers.items():
        if len(replies) > 1:
            (first, *others) = replies.values()
            for r in others:
                issues.append(Issue("correct", r.where, f"same question as {first.where} but a different answer", r.index))
    counts = Counter(r.row.get("category") for r in rows)
    if len(counts) > 1:
        for category, n in counts.items():
            if n / len(rows) < min_share:
                issues.append(Issue("representative", f"category {category!r}",
                                    f"only {n} rows ({n / len(rows):.1%}); the model will barely see it"))
    known = [c for c in counts if c in schema]
    for category in schema:
        if known and category not in counts:
            issues.append(Issue("representative", f"category {category!r}", "no rows at all"))
    for category in known:
        objs = [r.obj for r in rows if r.row.get("category") == category and r.obj is not None]
        for key, allowed in schema[category].items():
            values = Counter(str(o.get(key)) for o in objs)
            if len(objs) >= 20 and values and values.most_common(1)[0][1] / len(objs) > 0.8 and isinstance(allowed, list):
                value, n = values.most_common(1)[0]
                issues.append(Issue("representative", f"category {category!r}",
                                    f"{key}={value!r} in {n / len(objs):.0%} of answers; the others are rare"))
    lengths = [len(r.reply) for r in rows]
    if len(lengths) >= 10:
        median = statistics.median(lengths)
        for r in rows:
            if len(r.reply) > max(4 * median, median + 200):
                issues.append(Issue("representative", r.where, f"answer is {len(r.reply)} chars, median is {median:.0f}", r.index))


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[: width - 1] + "…")
