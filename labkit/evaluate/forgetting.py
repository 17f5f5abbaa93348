"""Did fine-tuning make the model forget? One call, for any run folder: ``labkit forgetting RUN_DIR``.

:func:`forgetting_report` puts the two sides of a fine-tune next to each other, before (the base
model) and after (the run's model):

* **what was learned**: domain accuracy on held-out questions (:func:`labkit.evaluate.domain.evaluate_domain`);
* **what was kept**: the general probe (:func:`labkit.evaluate.probe.general_probe`), with a
  confidence interval, and the seed's generation checks ("What's 15 x 23?" ...) side by side;
* **the alarm**: the seed article's rule of thumb says a general score that drops by more than 5%
  means forgetting. We read that as 5 percentage points on the probe.

Why an interval: the probe has 180 items, so one item is 0.56 points and a 5-point move is nine
items, which a model can gain or lose by chance. Before and after answer the *same* items, so the
honest test is paired: which items flipped from right to wrong (``lost``) and from wrong to right
(``gained``)? :func:`paired_delta` gives the change with Newcombe's interval for paired
proportions and McNemar's exact p-value; :func:`wilson_interval` gives one score's interval. The
alarm then says whether a drop is past the line *and* larger than noise.

Every evaluation is cached beside what it judged (``<run>/evals/``, the base model's under
``runs/base-evals/``), keyed by the items it used, so a second report costs nothing. The domain
files use the same names as lesson 2's, so its evaluations are shared.

>>> d = paired_delta([True] * 100 + [False] * 80, [True] * 88 + [False] * 92)
>>> print(d)
-6.7 points [-10.2, -3.0] (95% CI, paired; 12 items lost, 0 gained; McNemar p=0.00049)
>>> alarm(d)
'ALARM'
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Callable, Sequence

from labkit import paths
from labkit.errors import UsageError
from labkit.files import cached_json

CONFIDENCE = 0.95
#: The seed article: "if general scores drop more than 5%, you're forgetting" (as points here).
ALARM_DROP = 0.05
#: How many formulary test questions the report asks by default (lessons 2 and 4 use the same 90).
DEFAULT_TEST_ROWS = 90

# What alarm() can say, most serious first.
ALARM = "ALARM"                      # dropped past the line, and more than noise
ALARM_NOISY = "past the line, within noise"  # the point estimate is past the line; the interval reaches 0
DROP = "drop, under the line"        # a real drop, smaller than the line
QUIET = "quiet"                      # no drop larger than noise


# ---------------------------------------------------------------------------------------------
# statistics


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence}: expected a number between 0 and 1")
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (stays inside [0, 1], fine at 0 or n)."""
    if n <= 0:
        raise ValueError("wilson_interval: n must be positive")
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: k={k} outside 0..{n}")
    z = _z(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # at 0 or n the bound is exactly 0 or 1 (floating point would leave 1e-17)
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def mcnemar_exact(lost: int, gained: int) -> float:
    """Two-sided exact McNemar p-value: are ``lost`` and ``gained`` flips too uneven for chance?"""
    m = lost + gained
    if m == 0:
        return 1.0
    k = min(lost, gained)
    tail = sum(math.comb(m, i) for i in range(k + 1)) / 2 ** m
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedDelta:
    """The change in accuracy on the same items, before -> after, with its interval.

    ``lost``: items right before and wrong after; ``gained``: the reverse. ``low``/``high`` bound
    ``delta`` (after - before) at ``confidence``; ``p_value`` is McNemar's exact test.
    """

    before: float
    after: float
    n: int
    lost: int
    gained: int
    low: float
    high: float
    p_value: float
    confidence: float = CONFIDENCE

    @property
    def delta(self) -> float:
        return self.after - self.before

    @property
    def significant(self) -> bool:
        """The interval excludes zero: the change is larger than the noise of ``n`` items."""
        return self.high < 0 or self.low > 0

    def __str__(self) -> str:
        return (f"{100 * self.delta:+.1f} points [{100 * self.low:+.1f}, {100 * self.high:+.1f}] "
                f"({100 * self.confidence:.0f}% CI, paired; {self.lost} items lost, {self.gained} gained; "
                f"McNemar p={self.p_value:.2g})")

    def to_dict(self) -> dict:
        return {**asdict(self), "delta": self.delta, "significant": self.significant}


def paired_delta(before: Sequence[bool], after: Sequence[bool], confidence: float = CONFIDENCE) -> PairedDelta:
    """After - before accuracy on the same items, with Newcombe's (1998, method 10) paired interval.

    The interval combines each side's Wilson interval with the correlation between the two
    answers per item: a model that keeps most of its answers has a much narrower interval for its
    change than two independent 180-item scores would.
    """
    before, after = [bool(x) for x in before], [bool(x) for x in after]
    if len(before) != len(after) or not before:
        raise ValueError(f"paired_delta: need two equally long, non-empty lists (got {len(before)} and {len(after)})")
    n = len(before)
    a = sum(x and y for x, y in zip(before, after))          # right both times
    lost = sum(x and not y for x, y in zip(before, after))
    gained = sum(y and not x for x, y in zip(before, after))
    d = n - a - lost - gained                                  # wrong both times
    p1, p2 = (a + lost) / n, (a + gained) / n
    l1, u1 = wilson_interval(a + lost, n, confidence)
    l2, u2 = wilson_interval(a + gained, n, confidence)
    denom = (a + lost) * (gained + d) * (a + gained) * (lost + d)
    phi = (a * d - lost * gained) / math.sqrt(denom) if denom > 0 else 0.0
    diff = p2 - p1
    down = math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    up = math.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2))
    return PairedDelta(before=p1, after=p2, n=n, lost=lost, gained=gained, low=max(-1.0, diff - down),
                       high=min(1.0, diff + up), p_value=mcnemar_exact(lost, gained), confidence=confidence)


def paired_from_ids(before_correct: Sequence[str], after_correct: Sequence[str], ids: Sequence[str],
                    confidence: float = CONFIDENCE) -> PairedDelta:
    """:func:`paired_delta` from the ids each side got right, over the item ids both answered."""
    b, a = set(before_correct), set(after_correct)
    return paired_delta([i in b for i in ids], [i in a for i in ids], confidence)


def alarm(delta: PairedDelta, line: float = ALARM_DROP) -> str:
    """The seed's >5% rule, with the noise taken into account (see the module's constants)."""
    drop = -delta.delta
    if drop > line:
        return ALARM if delta.high < 0 else ALARM_NOISY
    if delta.high < 0:
        return DROP
    return QUIET


# ---------------------------------------------------------------------------------------------
# cached evaluations


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def base_dir() -> Path:
    """Where the untouched base model's evaluations are cached (shared by every lesson)."""
    return paths.runs_dir() / "base-evals"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))[-60:]


def probe_file(folder: Path | None, items: list[dict], model: str) -> Path:
    from labkit.evaluate.probe import ANSWER_PREFIX

    key = _key([i["id"] for i in items], ANSWER_PREFIX, "sum")
    if folder is None:
        return base_dir() / f"probe-{_safe(model)}-{key}.json"
    return Path(folder) / "evals" / f"probe-{key}.json"


def domain_file(folder: Path | None, rows: list[dict], model: str) -> Path:
    # The same names as lesson 2's evaluate_run / evaluate_base("dataset"), so their files are shared.
    ids = [r.get("id") for r in rows]
    if folder is None:
        return base_dir() / f"dataset-{_key(model, 'dataset', None, ids)}.json"
    key = hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:10]
    return Path(folder) / "evals" / f"domain-{key}.json"


def checks_file(folder: Path | None, model: str) -> Path:
    from labkit.evaluate.probe import CHECKS

    key = _key([c[0] for c in CHECKS])
    if folder is None:
        return base_dir() / f"checks-{_safe(model)}-{key}.json"
    return Path(folder) / "evals" / f"checks-{key}.json"


def probe_dict(loaded, items: list[dict]) -> dict:
    """The probe as a small JSON-able dict: accuracy, its interval, and which items were right."""
    from labkit.evaluate.probe import general_probe

    report = general_probe(loaded, items=items, limit=len(items), batch_size=32)
    k = sum(r["correct"] for r in report.results)
    low, high = wilson_interval(k, report.n)
    return {"accuracy": report.accuracy, "n": report.n, "low": low, "high": high, "chance": report.chance,
            "per_subject": report.per_subject, "seconds": round(report.seconds, 2),
            "ids": [r["id"] for r in report.results], "correct": [r["id"] for r in report.results if r["correct"]]}


def domain_dict(loaded, rows: list[dict]) -> dict:
    """Domain accuracy as a JSON-able dict (the same keys as lesson 2's cached evaluations)."""
    from labkit.evaluate.domain import evaluate_domain

    return evaluate_domain(loaded, rows, limit=len(rows)).to_dict()


def checks_list(loaded) -> list[dict]:
    from labkit.evaluate.probe import generation_checks

    return [{"prompt": c.prompt, "expect": c.expect, "reply": c.reply, "passed": c.passed}
            for c in generation_checks(loaded)]


class _Lazy:
    """Load a model only if some evaluation is not cached yet; load it once."""

    def __init__(self, load: Callable[[], object]):
        self._load, self._model = load, None

    def __call__(self):
        if self._model is None:
            self._model = self._load()
        return self._model


# ---------------------------------------------------------------------------------------------
# the report


@dataclass
class ForgettingReport:
    """Domain and general, before and after, for one run: see :func:`forgetting_report`."""

    run: str
    model: str
    probe_before: dict
    probe_after: dict
    delta: PairedDelta
    alarm: str
    domain_before: dict | None = None
    domain_after: dict | None = None
    checks_before: list[dict] = field(default_factory=list)
    checks_after: list[dict] = field(default_factory=list)
    line: float = ALARM_DROP

    @property
    def domain_gain(self) -> float | None:
        """Fields right after - before (the domain score the lessons judge quality by)."""
        if not (self.domain_before and self.domain_after):
            return None
        return self.domain_after["partial_credit"] - self.domain_before["partial_credit"]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["delta"] = self.delta.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "ForgettingReport":
        delta = {k: v for k, v in d["delta"].items() if k not in ("delta", "significant")}
        return cls(**{**d, "delta": PairedDelta(**delta)})

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(measure, before, after, change) for a table."""
        out = []
        if self.domain_before and self.domain_after:
            for key, name in (("partial_credit", "domain: fields right"), ("accuracy", "domain: exact answers")):
                b, a = self.domain_before[key], self.domain_after[key]
                out.append((name, f"{b:.1%}", f"{a:.1%}", f"{100 * (a - b):+.1f} points"))
        pb, pa = self.probe_before, self.probe_after
        out.append((f"general probe ({pb['n']} items)", f"{pb['accuracy']:.1%} [{pb['low']:.0%}, {pb['high']:.0%}]",
                    f"{pa['accuracy']:.1%} [{pa['low']:.0%}, {pa['high']:.0%}]", str(self.delta)))
        if self.checks_before and self.checks_after:
            nb, na = sum(c["passed"] for c in self.checks_before), sum(c["passed"] for c in self.checks_after)
            out.append(("generation checks passed", f"{nb}/{len(self.checks_before)}",
                        f"{na}/{len(self.checks_after)}", f"{na - nb:+d}"))
        return out

    def verdict(self) -> str:
        line = f"{100 * self.line:.0f}-point line"
        return {ALARM: f"ALARM: the general probe fell past the {line}, by more than noise",
                ALARM_NOISY: f"past the {line}, but within noise: measure on more items before acting",
                DROP: f"a real but small drop, under the {line}: keep watching",
                QUIET: "no forgetting larger than noise"}[self.alarm]

    def __str__(self) -> str:
        lines = [f"forgetting report: {self.run} (base {self.model})"]
        lines += [f"  {m:<28} {b:>22} -> {a:<22} {c}" for m, b, a, c in self.rows()]
        lines.append(f"  verdict: {self.verdict()}")
        for before, after in zip(self.checks_before, self.checks_after):
            lines.append(f"  {before['prompt']}")
            lines.append(f"    before: {_one_line(before['reply'])}")
            lines.append(f"    after:  {_one_line(after['reply'])}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        colour = {ALARM: "#cf222e", ALARM_NOISY: "#9a6700", DROP: "#9a6700", QUIET: "#1a7f37"}[self.alarm]
        body = "".join(f"<tr><td>{html.escape(m)}</td><td>{html.escape(b)}</td><td>{html.escape(a)}</td>"
                       f"<td>{html.escape(c)}</td></tr>" for m, b, a, c in self.rows())
        checks = "".join(
            f"<tr><td>{html.escape(b['prompt'])}</td><td style='white-space:pre-wrap'>{html.escape(b['reply'])}</td>"
            f"<td style='white-space:pre-wrap'>{html.escape(a['reply'])}</td></tr>"
            for b, a in zip(self.checks_before, self.checks_after))
        return (f"<b>Forgetting report</b>: {html.escape(self.run)}<table><tr><th>measure</th><th>before</th>"
                f"<th>after</th><th>change</th></tr>{body}</table>"
                f"<p style='color:{colour};font-weight:bold'>{html.escape(self.verdict())}</p>"
                + (f"<details><summary>generation checks, before and after</summary><table><tr><th>prompt</th>"
                   f"<th>before</th><th>after</th></tr>{checks}</table></details>" if checks else ""))


def _one_line(text: str, width: int = 100) -> str:
    text = " / ".join(line for line in text.splitlines() if line.strip())
    return text if len(text) <= width else text[: width - 3] + "..."


def default_test_rows(limit: int = DEFAULT_TEST_ROWS) -> list[dict]:
    """The formulary's held-out questions, category-balanced (the ones lessons 2 and 4 ask)."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    return balanced(formulary.load_split("test"), limit)


def forgetting_report(
    run,
    test_rows: list[dict] | None = None,
    probe_items: list[dict] | None = None,
    *,
    domain: bool = True,
    checks: bool = True,
    line: float = ALARM_DROP,
    log: Callable[[str], None] | None = None,
) -> ForgettingReport:
    """Domain and general, before and after, with the alarm, for one fine-tuning run.

    Args:
        run: a :class:`labkit.sft.Run` or the path of a run folder (``runs/<name>-<hash>``).
        test_rows: domain chat rows to score (default: :func:`default_test_rows`, the formulary).
        probe_items: probe items (default: all of :func:`labkit.data.general.probe`).
        domain, checks: include the domain score / the generation checks (each costs a little
            generation; the probe is always run).
        line: the alarm line as a fraction (0.05: 5 points).
        log: called with a line before each evaluation that is not cached yet.

    Every piece is cached beside what it judged; the base model's under ``runs/base-evals``.
    """
    from labkit.sft.run import Run

    if not isinstance(run, Run):
        run = Run.open(run)
    model_name = run.config.model
    if probe_items is None:
        from labkit.data.general import probe

        probe_items = probe()
    probe_items = list(probe_items)
    if domain and test_rows is None:
        test_rows = default_test_rows()
    say = log or (lambda line: None)
    base = _Lazy(lambda: _load_base(model_name))
    tuned = _Lazy(run.load)

    def cached(path: Path, what: str, compute):
        if not path.is_file():
            say(f"  {what} ...")
        return cached_json(path, compute)

    probe_before = cached(probe_file(None, probe_items, model_name), "probe, base model",
                          lambda: probe_dict(base(), probe_items))
    probe_after = cached(probe_file(run.path, probe_items, model_name), f"probe, {run.path.name}",
                         lambda: probe_dict(tuned(), probe_items))
    delta = paired_from_ids(probe_before["correct"], probe_after["correct"], probe_before["ids"])
    report = ForgettingReport(run=run.path.name, model=model_name, probe_before=probe_before,
                              probe_after=probe_after, delta=delta, alarm=alarm(delta, line), line=line)
    if domain:
        test_rows = list(test_rows)
        report.domain_before = cached(domain_file(None, test_rows, model_name), "domain questions, base model",
                                      lambda: domain_dict(base(), test_rows))
        report.domain_after = cached(domain_file(run.path, test_rows, model_name), f"domain questions, {run.path.name}",
                                     lambda: domain_dict(tuned(), test_rows))
    if checks:
        report.checks_before = cached(checks_file(None, model_name), "generation checks, base model",
                                      lambda: checks_list(base()))
        report.checks_after = cached(checks_file(run.path, model_name), f"generation checks, {run.path.name}",
                                     lambda: checks_list(tuned()))
    return report


def base_report(model: str, probe_items: list[dict] | None = None, test_rows: list[dict] | None = None,
                checks: bool = True) -> dict:
    """The base model's own probe, domain score and checks (cached), for a table's first row."""
    if probe_items is None:
        from labkit.data.general import probe

        probe_items = probe()
    base = _Lazy(lambda: _load_base(model))
    out = {"probe": cached_json(probe_file(None, list(probe_items), model), lambda: probe_dict(base(), list(probe_items)))}
    if test_rows is not None:
        out["domain"] = cached_json(domain_file(None, list(test_rows), model), lambda: domain_dict(base(), list(test_rows)))
    if checks:
        out["checks"] = cached_json(checks_file(None, model), lambda: checks_list(base()))
    return out


def _load_base(name: str):
    from labkit import models

    return models.load(name, precision="fp32")


# ---------------------------------------------------------------------------------------------
# CLI: labkit forgetting RUN_DIR


def add_parser(subparsers) -> None:
    """Register ``labkit forgetting`` on the CLI's subparsers."""
    p = subparsers.add_parser("forgetting", help="domain and general scores before vs after one run, with the alarm")
    p.add_argument("run_dir", help="a finished run folder, e.g. runs/lesson2-full-0123456789")
    p.add_argument("--test", help="domain test questions as chat JSONL (default: the formulary's test split)")
    p.add_argument("--limit", type=int, default=DEFAULT_TEST_ROWS, help="how many test questions (balanced)")
    p.add_argument("--no-domain", action="store_true", help="skip the domain score")
    p.add_argument("--no-checks", action="store_true", help="skip the generation checks")
    p.add_argument("--line", type=float, default=100 * ALARM_DROP, help="alarm line in points (default 5)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--fail-on-alarm", action="store_true", help="exit 1 when the alarm trips (for CI)")
    p.set_defaults(func=cli_forgetting)


def cli_forgetting(args) -> int:
    """``labkit forgetting RUN_DIR``: print the report; exit 1 on ALARM with ``--fail-on-alarm``."""
    from labkit.data.chat import read_chat_jsonl
    from labkit.evaluate.domain import balanced

    if not Path(args.run_dir).is_dir():
        raise UsageError(f"{args.run_dir}: no such run folder")
    if args.limit is not None and args.limit <= 0:
        raise UsageError(f"--limit={args.limit}: must be positive")
    rows = None
    if not args.no_domain:
        rows = balanced(read_chat_jsonl(args.test), args.limit) if args.test else default_test_rows(args.limit)
    started = time.perf_counter()
    report = forgetting_report(args.run_dir, rows, domain=not args.no_domain, checks=not args.no_checks,
                               line=args.line / 100, log=lambda line: print(line, flush=True))
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report)
        print(f"({time.perf_counter() - started:.0f} s; evaluations cached under {paths.shown(Path(args.run_dir) / 'evals')})")
    return 1 if args.fail_on_alarm and report.alarm == ALARM else 0
