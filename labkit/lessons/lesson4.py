"""Lesson 4, catastrophic forgetting (E7): what a fine-tune learns, what it loses, and four defences.

Every arm fine-tunes SmolLM2-135M-Instruct on the same 480 formulary rows for the same number of
steps with the same seed; the arms differ in one thing each:

* ``full``      full fine-tuning (the forgetting arm), with the general probe scored at every
  evaluation while it trains (the forgetting-over-time curve);
* ``full-less`` the same run stopped early: its checkpoint at ``plan.less_step`` ("train less");
* ``r16``       LoRA r16 (lesson 2's arm, reused from its cache);
* ``r16-mix``   LoRA r16 with ~15% general rows blended in (``labkit.data.general.blend``; the seed's
  decision-point recipe);
* ``full-mix``  full fine-tuning with the same blend: "go further" (``Plan(go_further=True)``), because
  a third 60-step arm takes the cold run past the 15-minute budget, and the LoRA pair already shows
  what the mix does here (measured with both: 0 of 4 general prompts answered like a formulary with
  the mix, 4 of 4 without, for full fine-tuning and for LoRA alike).

For each arm :func:`labkit.evaluate.forgetting.forgetting_report` measures the domain score (what
was learned) and the general probe with its paired interval (what was kept), before and after,
and the >5-point alarm. Evaluations are cached beside their runs. The notebook's tables, figures and
readings are in :mod:`labkit.lessons.lesson4_read`.

>>> plan = Plan.for_profile("smoke")                      # doctest: +SKIP
>>> results = run(plan, board)                             # doctest: +SKIP
>>> claims(results)                                        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit import paths
from labkit.config import TrainConfig
from labkit.errors import UsageError
from labkit.evaluate.claims import Claim
from labkit.evaluate.forgetting import ALARM_DROP, PairedDelta, forgetting_report, paired_from_ids

TITLE = "Catastrophic forgetting: E7 full fine-tuning vs LoRA, a general mix and training less"
NOTEBOOK = "04_catastrophic_forgetting.ipynb"
#: the arms in table order; ``full-less`` is a checkpoint of ``full``, not a run of its own
ARMS = ("full", "full-less", "r16", "full-mix", "r16-mix")
TRAINED = ("full", "r16", "full-mix", "r16-mix")
#: what a default plan trains; ``go_further`` adds full-mix (and LoRA's probe curve)
DEFAULT_TRAINED = ("full", "r16", "r16-mix")
LABELS = {"base": "base model", "full": "full FT", "full-less": "full FT, stopped early",
          "r16": "LoRA r16", "full-mix": "full FT + 15% general", "r16-mix": "LoRA r16 + 15% general"}

# The same rates as lesson 2 (chosen there by measurement for a 60-step run): LoRA 1e-3, full 2.5e-4.
LEARNING_RATES = {"lora": 1e-3, "full": 2.5e-4}


@dataclass(frozen=True)
class Plan:
    """How big the lesson's experiments are. ``smoke`` keeps CI fast; ``full`` gives real results."""

    profile: str
    train_rows: int
    val_rows: int
    test_rows: int
    probe_items: int | None  # None: the whole probe (180 items)
    epochs: float
    max_steps: int | None
    less_step: int            # where "train less" stops the full arm (an evaluation step)
    mix_fraction: float = 0.15
    batch_size: int = 8
    seed: int = 0
    go_further: bool = False  # also full FT + mix, and LoRA r16 retrained with the probe curve
    isolate: bool = True      # arms without the probe curve in their own process, as lesson 2 trains them

    @classmethod
    def for_profile(cls, profile: str | None = None, go_further: bool = False) -> "Plan":
        profile = profile or paths.profile()
        if profile == "smoke":
            # lesson 2's smoke sizes, so CI shares the reused arms' runs with lesson 2
            return cls("smoke", train_rows=32, val_rows=4, test_rows=3, probe_items=30, epochs=1, max_steps=4,
                       less_step=2, go_further=go_further, isolate=False)
        if profile != "full":
            raise UsageError(f"profile={profile!r}: expected 'smoke' or 'full'")
        # lesson 2's full sizes: 480 rows, one epoch = 60 steps of 8, 90 test questions
        return cls("full", train_rows=480, val_rows=48, test_rows=90, probe_items=None, epochs=1, max_steps=None,
                   less_step=24, go_further=go_further)

    @property
    def lora_curve(self) -> bool:
        return self.go_further

    @property
    def trained(self) -> tuple[str, ...]:
        """The arms this plan trains, in order."""
        return TRAINED if self.go_further else DEFAULT_TRAINED

    @property
    def defences(self) -> tuple[str, ...]:
        """The arms of the notebook's defences section (everything trained but full)."""
        return tuple(arm for arm in self.trained if arm != "full")

    @property
    def steps(self) -> int:
        return self.max_steps or int(self.epochs * self.train_rows / self.batch_size)

    @property
    def eval_every(self) -> int:
        # lesson 2's choice: five evaluations per run (each one is also a point of the probe curve)
        return max(2, self.steps // 5)

    def describe(self) -> str:
        probe = "all 180" if self.probe_items is None else str(self.probe_items)
        return (f"{self.profile} profile: {self.train_rows} formulary rows, {self.steps} steps of {self.batch_size} "
                f"per arm, {100 * self.mix_fraction:.0f}% general rows in the mix arms, {self.test_rows} test "
                f"questions, {probe} probe items; 'train less' = the full arm at step {self.less_step}; "
                f"arms trained: {', '.join(self.trained)}")


# ---------------------------------------------------------------------------------------------
# data and arms


def data(plan: Plan) -> tuple[list[dict], list[dict], list[dict]]:
    """Category-balanced train / val / test formulary rows: the same rows as lesson 2."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    return (balanced(formulary.load_split("train"), plan.train_rows),
            balanced(formulary.load_split("val"), plan.val_rows),
            balanced(formulary.load_split("test"), plan.test_rows))


def probe_items(plan: Plan) -> list[dict]:
    from labkit.data.general import probe
    from labkit.evaluate.domain import balanced

    items = probe()
    return items if plan.probe_items is None else balanced(items, plan.probe_items, key="subject")


def train_rows_for(arm: str, plan: Plan) -> list[dict]:
    """The arm's training rows: the formulary rows, plus general rows for a ``-mix`` arm."""
    from labkit.data.general import blend

    rows, _, _ = data(plan)
    return blend(rows, plan.mix_fraction, seed=plan.seed) if arm.endswith("-mix") else rows


def uses_curve(arm: str, plan: Plan) -> bool:
    """Arms trained here with the probe scored during training (in this process)."""
    return arm == "full" or (arm == "r16" and plan.lora_curve)


def arm_config(arm: str, plan: Plan) -> TrainConfig:
    """The TrainConfig of one arm. Only the method and the rows differ; steps, batch, seed are shared.

    ``r16`` without a curve is lesson 2's ``lesson2-r16`` exactly (same name, config and rows), so its
    finished run is reused from the cache. ``full`` has lesson 2's config too but is trained here,
    because the probe curve has to be measured while it trains.
    """
    if arm not in TRAINED:
        raise UsageError(f"arm={arm!r}: expected one of {', '.join(TRAINED)}")
    method = "full" if arm.startswith("full") else "lora"
    common = dict(method=method, rank=16, learning_rate=LEARNING_RATES[method], epochs=plan.epochs,
                  batch_size=plan.batch_size, seed=plan.seed, early_stopping_patience=None,
                  eval_every=plan.eval_every)
    if arm.endswith("-mix"):
        # more rows than steps x batch: fix the steps so every arm takes the same number
        return TrainConfig(run_name=f"lesson4-{arm}", max_steps=plan.steps, **common)
    name = f"lesson4-{arm}" if uses_curve(arm, plan) else f"lesson2-{arm}"
    return TrainConfig(run_name=name, max_steps=plan.max_steps, **common)


def train_arm(arm: str, plan: Plan, board=None, retrain: bool = False):
    """Train (or reuse) one arm. Curve arms train in this process with the probe attached;
    the others as lesson 2 trains them (``plan.isolate``: own process; smoke: this one)."""
    from labkit.sft import train_arm

    config = arm_config(arm, plan)
    _, val_rows, test_rows = data(plan)
    rows = train_rows_for(arm, plan)
    if uses_curve(arm, plan):
        from labkit.evaluate.forgetting_curve import ProbeCallback
        from labkit.sft.train import train

        probe = ProbeCallback(probe_items(plan), snapshot_steps=(plan.less_step,), domain_rows=test_rows)
        return train(config, rows, val_rows, board=board, label=arm, callbacks=[probe], retrain=retrain)
    return train_arm(config, rows, val_rows, isolate=plan.isolate, board=board, label=arm, retrain=retrain)


# ---------------------------------------------------------------------------------------------
# evaluation (cached beside each run)


def evaluate_arm(run, plan: Plan, log=None):
    """The forgetting report of one trained arm (domain, probe with interval, checks, alarm)."""
    _, _, test_rows = data(plan)
    return forgetting_report(run, test_rows, probe_items(plan), log=log)


def curve(run) -> list[dict]:
    from labkit.evaluate.forgetting_curve import read_curve

    return read_curve(run.path)


def less_report(full_report, full_run, plan: Plan):
    """"Train less": the full arm's checkpoint at ``plan.less_step``, as a report of its own."""
    from labkit.evaluate.forgetting import ForgettingReport, alarm

    point = next((p for p in curve(full_run) if p["step"] == plan.less_step), None)
    if point is None or "domain" not in point:
        return None
    after = {**{k: point[k] for k in ("accuracy", "n", "low", "high", "correct")},
             "ids": full_report.probe_before["ids"]}
    delta = paired_from_ids(full_report.probe_before["correct"], point["correct"], full_report.probe_before["ids"])
    return ForgettingReport(run=f"{full_report.run} @ step {plan.less_step}", model=full_report.model,
                            probe_before=full_report.probe_before, probe_after=after, delta=delta,
                            alarm=alarm(delta), domain_before=full_report.domain_before,
                            domain_after=point["domain"], checks_before=full_report.checks_before,
                            checks_after=point.get("checks", []))


def run(plan: Plan, board=None, log=print) -> dict:
    """Every arm trained (or reused) and evaluated.

    Returns ``{"plan", "runs": {arm: Run}, "reports": {arm: ForgettingReport}}``; ``full-less`` has
    a report but no run of its own (it is a checkpoint of ``full``).
    """
    runs, reports = {}, {}
    for arm in plan.trained:
        runs[arm] = train_arm(arm, plan, board)
        reports[arm] = evaluate_arm(runs[arm], plan, log=log)
        if arm == "full":
            less = less_report(reports["full"], runs["full"], plan)
            if less is not None:
                reports["full-less"] = less
        log(f"  {arm:<9} {'reused' if runs[arm].reused else 'trained'}: " + one_line(reports[arm]))
    if "full-less" in reports:
        log(f"  full-less (step {plan.less_step}): " + one_line(reports["full-less"]))
    return {"plan": plan, "runs": runs, "reports": {a: reports[a] for a in ARMS if a in reports}}


def one_line(report) -> str:
    d = report.domain_after or {}
    return (f"fields right {d.get('partial_credit', 0):.1%}, probe {report.probe_before['accuracy']:.1%} -> "
            f"{report.probe_after['accuracy']:.1%} ({100 * report.delta.delta:+.1f} points "
            f"[{100 * report.delta.low:+.1f}, {100 * report.delta.high:+.1f}]), {report.alarm}")


# ---------------------------------------------------------------------------------------------
# the seed's claims, next to the paper's and ours


def _after_vs(reports: dict, a: str, b: str) -> PairedDelta:
    """Probe after ``a`` minus after ``b``, paired on the same items (both start from the same base)."""
    ids = reports[a].probe_before["ids"]
    return paired_from_ids(reports[b].probe_after["correct"], reports[a].probe_after["correct"], ids)


def _pts(d: PairedDelta) -> str:
    return f"{100 * d.delta:+.1f} points [{100 * d.low:+.1f}, {100 * d.high:+.1f}]"


def _better(diff: PairedDelta, forgot: bool, what: str) -> str:
    """One threshold for every 'defence X helps' claim: does the defended arm keep significantly more?"""
    if not forgot:
        return "no signal: full fine-tuning did not forget more than noise, so there was nothing to prevent"
    if diff.low > 0:
        return "held"
    if diff.delta > 0:
        return f"partly: {what} kept more, but within the probe's noise"
    return f"did not hold: {what} kept no more than full fine-tuning"


def _leaks(checks: list[dict]) -> int:
    """How many replies to the general prompts came out in the domain's shape (the article's symptom)."""
    from labkit.evaluate.probe import domain_leak

    return sum(domain_leak(c["reply"]) for c in checks)


def _behaviour_forgot(report) -> bool:
    """Behavioural forgetting: most general prompts answered like a formulary, where the base model did not."""
    after = report.checks_after or []
    return bool(after) and _leaks(after) > len(after) / 2 and _leaks(report.checks_before or []) == 0


def _full_verdict(full, forgot: bool) -> str:
    if forgot:
        return "held"
    n = len(full.checks_after or [])
    if _behaviour_forgot(full):
        return (f"partly: the probe did not drop, but {_leaks(full.checks_after)} of {n} general prompts were "
                "answered like a formulary (the article's symptom: behaviour forgot, knowledge did not)")
    if full.delta.delta > -ALARM_DROP:
        return "did not hold: the probe did not drop by more than noise"
    return "did not hold: a large drop, but within the probe's noise"


def _behaviour_better(defended, full, what: str) -> str | None:
    """A defence judged on behaviour, when the probe had nothing to judge but the replies did."""
    if not _behaviour_forgot(full):
        return None
    n, k_full, k_def = len(defended.checks_after or []), _leaks(full.checks_after), _leaks(defended.checks_after or [])
    if not defended.checks_after:
        return None
    if k_def < k_full:
        return (f"held in behaviour: {k_def} of {n} general prompts answered like a formulary with {what}, "
                f"{k_full} of {n} without")
    return f"did not hold: with {what}, {k_def} of {n} general prompts were still answered like a formulary"


def _mix_verdict(diffs: dict[str, PairedDelta], lead: str, forgot: bool, reports: dict | None = None) -> str:
    """The mix's verdict; with nothing forgotten it may still have *raised* the probe, which is worth saying."""
    if forgot:
        return _better(diffs[lead], forgot, "the mix")
    if reports and lead in reports and "full" in reports:
        twin = reports[lead.removesuffix("-mix")] if lead.removesuffix("-mix") in reports else reports["full"]
        behaviour = _behaviour_better(reports[lead], twin, "the mix")
        if behaviour:
            raised = [m for m, d in diffs.items() if d.low > 0]
            return behaviour + (f"; the probe also ended significantly higher ({', '.join(LABELS[m] for m in raised)})"
                                if raised else "")
    raised = [m for m, d in diffs.items() if d.low > 0]
    if raised:
        return ("partly: nothing was forgotten to protect, but the mix kept significantly more of the probe than "
                f"training without it ({', '.join(LABELS[m] for m in raised)})")
    return _better(diffs[lead], forgot, "the mix")


def _less_verdict(diff: PairedDelta, less: PairedDelta, forgot: bool) -> str:
    """Stopping early; when the early checkpoint itself dropped for real, forgetting came and went."""
    if not forgot and less.high < 0 and diff.high < 0:
        return ("did not hold: the early checkpoint forgot more than the finished run "
                "(the probe dropped mid-training and recovered by the end)")
    return _better(diff, forgot, "stopping early")


def claims(results: dict) -> list[Claim]:
    """Article figure | paper figure | our figure | verdict, each verdict computed from our numbers.

    ``results["reports"]`` holds a :class:`~labkit.evaluate.forgetting.ForgettingReport` per arm
    (or the dicts of ``report.to_dict()``).
    """
    from labkit.evaluate.forgetting import ForgettingReport

    reports = {a: r if isinstance(r, ForgettingReport) else ForgettingReport.from_dict(r)
               for a, r in results["reports"].items()}
    rows = []
    full = reports.get("full")
    forgot = bool(full) and full.delta.high < 0
    if full:
        rows.append({
            "claim": "full fine-tuning forgets general knowledge",
            "article": "medical model answers '15 x 23?' with a diagnosis",
            "paper": "Biderman et al. 2024: full FT forgets more than LoRA (code/math, Llama-2-7B)",
            "ours": f"probe {_pct(full.probe_before['accuracy'])} -> {_pct(full.probe_after['accuracy'])}: "
                    f"{_pts(full.delta)}, McNemar p={full.delta.p_value:.2g}",
            "verdict": _full_verdict(full, forgot)})
    if full and "r16" in reports:
        diff = _after_vs(reports, "r16", "full")
        rows.append({
            "claim": "LoRA forgets less",
            "article": "LoRA: 'minimal forgetting', the single best defence",
            "paper": "Biderman et al. 2024: LoRA learns less and forgets less",
            "ours": f"LoRA r16 {_pts(reports['r16'].delta)} vs full {_pts(full.delta)}; "
                    f"LoRA - full after: {_pts(diff)}",
            "verdict": (None if forgot else _behaviour_better(reports["r16"], full, "LoRA"))
            or _better(diff, forgot, "LoRA")})
        gain_full, gain_lora = full.domain_gain, reports["r16"].domain_gain
        if gain_full is not None and gain_lora is not None:
            rows.append({
                "claim": "LoRA learns less",
                "article": "LoRA within 1-2% of full FT",
                "paper": "Biderman et al. 2024: LoRA learns less than full FT in the target domain",
                "ours": f"fields right gained: LoRA {100 * gain_lora:+.0f} points, full {100 * gain_full:+.0f} points",
                "verdict": "held" if gain_full - gain_lora >= 0.05 else
                "did not hold: LoRA learned about as much as full fine-tuning"})
    mix_pairs = [(m, p) for m, p in (("full-mix", "full"), ("r16-mix", "r16")) if m in reports and p in reports]
    if mix_pairs:
        diffs = {m: _after_vs(reports, m, p) for m, p in mix_pairs}
        lead = "full-mix" if "full-mix" in diffs else mix_pairs[0][0]
        cost = "; ".join(f"{LABELS[m]} fields right {100 * (reports[m].domain_after['partial_credit'] - reports[p].domain_after['partial_credit']):+.0f} points"
                         for m, p in mix_pairs)
        rows.append({
            "claim": "a 10-20% general mix protects general skills",
            "article": "mix in 10-20% general instruction data",
            "paper": "(no paper figure; common practice, e.g. replay in continual learning)",
            "ours": "; ".join(f"{LABELS[m]} vs without: {_pts(d)}" for m, d in diffs.items()) + f" (domain cost: {cost})",
            "verdict": _mix_verdict(diffs, lead, forgot, reports)})
    if full and "full-less" in reports:
        diff = _after_vs(reports, "full-less", "full")
        less = reports["full-less"]
        rows.append({
            "claim": "training less forgets less",
            "article": "forgetting accelerates with training: 2-3 epochs",
            "paper": "Biderman et al. 2024: forgetting grows with training steps",
            "ours": f"stopped early {_pts(less.delta)} vs full run {_pts(full.delta)} (fields right "
                    f"{_pct(less.domain_after['partial_credit'])} vs {_pct(full.domain_after['partial_credit'])})",
            "verdict": _less_verdict(diff, less.delta, forgot)})
    if reports:
        past = sorted(a for a, r in reports.items() if -r.delta.delta > ALARM_DROP)
        real = sorted(a for a, r in reports.items() if r.delta.high < 0)
        rows.append({
            "claim": "a drop of more than 5% on a general benchmark means forgetting",
            "article": "track MMLU / HellaSwag; alarm at a drop of more than 5%",
            "paper": "(no paper figure; the seed's rule of thumb)",
            "ours": f"past the 5-point line: {', '.join(past) or 'none'}; drops larger than noise: "
                    f"{', '.join(real) or 'none'}",
            "verdict": _alarm_and_behaviour(alarm_verdict(past, real), past, reports)})
    return [_claim(**row) for row in rows]


def _alarm_and_behaviour(verdict: str, past: list[str], reports: dict) -> str:
    """A benchmark line cannot see a format collapse: say so when it stayed quiet for an arm that had one."""
    missed = sorted(a for a, r in reports.items() if a not in past and _behaviour_forgot(r))
    if verdict.startswith("held") and missed:
        return ("partly: the line agreed with the intervals, but stayed quiet for "
                f"{', '.join(missed)}, whose general replies came out like a formulary")
    return verdict


def alarm_verdict(past: list[str], real: list[str]) -> str:
    """The >5% line agrees with the interval when it flags exactly the arms that really dropped."""
    if set(past) == set(real):
        return "held" if real else "held: nothing dropped, and the line stayed quiet"
    missed = sorted(set(real) - set(past))
    noisy = sorted(set(past) - set(real))
    parts = ([f"the line missed real drops in {', '.join(missed)}"] if missed else []) + \
            ([f"it flagged noise in {', '.join(noisy)}"] if noisy else [])
    return "partly: " + "; ".join(parts)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _claim(claim: str, article: str, paper: str, ours: str, verdict: str) -> Claim:
    # each verdict above is one threshold; its first words say which way it went
    held = True if verdict.startswith("held") else False if verdict.startswith("did not hold") else None
    return Claim(claim, article, paper, ours, verdict, held)
