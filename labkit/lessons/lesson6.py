"""Lesson 6, RAFT (E9): train the model to read retrieved passages, distractors and all.

Every arm answers the same formulary test questions with the same retrieval: MiniLM's top ``k``
passages over the formulary cut into ~160-character chunks (one or two lines each), as lesson 1
retrieves, which brings its own distractors. The arms:

* ``base-rag``: the untouched SmolLM2-135M-Instruct with the passages (RAG alone);
* ``ft`` / ``ft-rag``: domain fine-tuning without passages in training: lesson 2's LoRA r16 run,
  rebuilt here with its identical config and rows (a lesson never imports another), so the
  cached ``runs/lesson2-r16-<hash>`` is reused; answered without and with the passages;
* ``raft-p70`` (and ``raft-p100``; ``raft-p0`` and ``raft-p40`` with ``go_further``): LoRA r16
  trained on RAFT rows (:mod:`labkit.rag.raft`) where a share P of the rows holds the oracle
  among hard distractors and the rest distractors only; answers quote the line, then the JSON.

Then the robustness check: the same questions with the oracle passages taken out of the retrieved
context (the next passages move up): who still answers right (memory, or a same-class near-twin:
every formulary fact is a class fact), who invents, who says the answer is not in the passages.
And the quote check: the share of answers whose quoted span is verbatim in the passages shown.

Same base, same seed, same LoRA recipe (r16, lr 1e-3) for every trained arm, and about the same
number of training tokens: lesson 2's arm saw 480 rows of ~73 tokens (60 steps of 8, 35k tokens);
a RAFT arm sees 96 rows of ~360 tokens (24 steps of 4, ~35k tokens: an oracle or distractor-only
context of four or five ~160-character chunks, the quote and the JSON).

Cold cost of the default full plan, measured twice on the same 2-core host with AVX2 only
(``labkit run lesson6 --profile full`` with lesson 2's r16 cached, nothing else), whose speed drifts
from day to day (its fp32 matmul peak, measured the same day): **606 s (10.1 minutes)** at
180 GFLOP/s, 1,146 s (19.1 minutes) at 62 GFLOP/s. On the fast day the two RAFT arms trained in
2 min 58 s and 3 min 01 s (7.4-7.5 s per step of 4 rows of ~345 tokens, two validations of 12 rows
included; 13.7-14.3 s on the slow day); everything else (embedding the 1,890 passages once, loads,
building rows, eight evaluations of 30 answers) took the rest: 0.7 s per answer for base + RAG,
0.3 / 0.6 s for the domain fine-tune without / with passages, 1.2 s for a RAFT answer (it quotes
before the JSON). Same answers, to the point, on both days. Without
lesson 2's run, add its r16 arm (3-6 minutes, by the day). ``go_further`` adds the P = 0 and 0.4
arms (3-5 minutes of training and 1-2 of answers each) and the base model without the oracle.

>>> plan = Plan.for_profile("smoke")                      # doctest: +SKIP
>>> results = run(plan, board)                             # doctest: +SKIP
>>> claims(results)                                        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from labkit import paths
from labkit.config import TrainConfig
from labkit.errors import UsageError
from labkit.evaluate.claims import Claim
from labkit.files import cached_json

TITLE = "RAFT: E9 training the model to read retrieved passages, distractors and all"
NOTEBOOK = "06_raft.ipynb"
MODEL = "smollm2-135m-instruct"
#: Passage size in characters: one or two monograph lines, so a RAFT row with an oracle and its
#: distractors stays near 300 tokens (with lesson 1's 300-character chunks it was ~460).
CHUNK = 160
#: The RAFT arms' system prompt (the instruction after it asks for the quote, then the JSON).
SYSTEM = "You answer questions about the Northwind formulary (fictional drugs)."
#: LoRA's rate for every trained arm: lesson 2's measured choice for 135M over a few dozen steps.
LORA_LR = 1e-3
#: Tokens a quoting answer may take (the longest built answer is ~80).
COT_TOKENS = 96


@dataclass(frozen=True)
class Lesson2Arm:
    """What lesson 2 trains for one profile (``labkit.lessons.lesson2.Plan`` and ``data``), mirrored
    because a lesson never imports another; ``tests/test_lesson6.py`` checks the match."""

    train_rows: int
    val_rows: int
    max_steps: int | None


LESSON2 = {"smoke": Lesson2Arm(32, 4, 4), "full": Lesson2Arm(480, 48, None)}


@dataclass(frozen=True)
class Plan:
    """How big the lesson's experiment is; ``smoke`` keeps CI fast, ``full`` gives real results.

    Attributes:
        raft_rows: RAFT training rows per arm (built from the formulary's training questions).
        val_rows: RAFT validation rows (from the validation questions, built the same way).
        test_rows: category-balanced test questions every arm answers (and again without oracle).
        max_steps, batch_size: every RAFT arm's steps; ``raft_rows = max_steps * batch_size``.
        k: retrieved passages per question at test time.
        num_distractors: distractors beside the oracle in a RAFT training row.
        fractions: the P of the RAFT arms run by default; ``further_fractions`` with ``go_further``.
        corpus_docs: index only the passages of this many documents (those of the test and
            training questions first); ``None``: the whole formulary (the smoke profile keeps
            the embedding step to seconds).
        answer_tokens: new tokens a RAFT answer may take (quote, then JSON); the smoke profile
            halves it, since a model trained for four steps quotes nothing and runs to the limit.
    """

    profile: str
    raft_rows: int
    val_rows: int
    test_rows: int
    max_steps: int
    batch_size: int = 4
    k: int = 3
    num_distractors: int = 3
    fractions: tuple[float, ...] = (0.7, 1.0)
    further_fractions: tuple[float, ...] = (0.0, 0.4)
    corpus_docs: int | None = None
    seed: int = 0
    go_further: bool = False
    answer_tokens: int = COT_TOKENS

    @classmethod
    def for_profile(cls, profile: str | None = None, go_further: bool = False) -> "Plan":
        profile = profile or paths.profile()
        if profile == "smoke":
            # sized for nbval's 3-minute budget: a RAFT step of 4 rows of ~350 tokens is ~12 s on 2 cores
            return cls("smoke", raft_rows=8, val_rows=4, test_rows=3, max_steps=4, batch_size=2, corpus_docs=40,
                       answer_tokens=48, go_further=go_further)
        if profile != "full":
            raise UsageError(f"profile={profile!r}: expected 'smoke' or 'full'")
        # 10.1 minutes cold with lesson 2 cached (19.1 on the same host's slow day: module docstring)
        return cls("full", raft_rows=96, val_rows=12, test_rows=30, max_steps=24, go_further=go_further)

    @property
    def lesson2(self) -> Lesson2Arm:
        return LESSON2[self.profile]

    def raft_fractions(self) -> tuple[float, ...]:
        """Every P this plan trains, smallest first."""
        return tuple(sorted(set(self.fractions) | (set(self.further_fractions) if self.go_further else set())))

    def raft_arms(self) -> list[str]:
        return [raft_arm(p) for p in self.raft_fractions()]

    def describe(self) -> str:
        return (f"{self.profile} profile: RAFT arms P = {', '.join(f'{p:g}' for p in self.raft_fractions())} on "
                f"{self.raft_rows} rows ({self.max_steps} steps of {self.batch_size}, oracle + {self.num_distractors} "
                f"distractors), lesson 2's LoRA r16 as the domain fine-tune, {self.test_rows} test questions "
                f"with MiniLM top-{self.k}, then again with the oracle removed"
                + ("" if self.go_further else f" (go further: P = {', '.join(f'{p:g}' for p in self.further_fractions)})"))


def raft_arm(p: float) -> str:
    return f"raft-p{round(100 * p)}"


# ---------------------------------------------------------------------------------------------
# data: questions, passages, RAFT rows, lesson 2's rows


def test_rows(plan: Plan) -> list[dict]:
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    return balanced(formulary.load_split("test"), plan.test_rows)


def passages(plan: Plan) -> list[dict]:
    """The formulary in ``CHUNK``-character passages (smoke: only ``corpus_docs`` documents)."""
    from labkit import rag
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    corpus = formulary.corpus()
    if plan.corpus_docs is not None:
        needed = [d for r in test_rows(plan) + balanced(formulary.load_split("train"), plan.raft_rows)
                  + balanced(formulary.load_split("val"), plan.val_rows) for d in r["doc_ids"]]
        keep = list(dict.fromkeys(needed + [d["id"] for d in corpus]))[:max(plan.corpus_docs, len(set(needed)))]
        corpus = [d for d in corpus if d["id"] in set(keep)]
    return rag.formulary_passages(size=CHUNK, corpus=corpus)


def raft_config(p: float, plan: Plan):
    from labkit.rag.raft import RaftConfig

    return RaftConfig(oracle_fraction=p, num_distractors=plan.num_distractors, distractors="hard",
                      no_oracle_target="memory", cot=True, seed=plan.seed, max_length=512, system=SYSTEM)


def raft_data(p: float, plan: Plan, lab: "Lab") -> tuple[list[dict], list[dict]]:
    """The RAFT training and validation rows of one P (validation rows use the same P)."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced
    from labkit.rag.raft import build_raft

    cfg = raft_config(p, plan)
    train = build_raft(balanced(formulary.load_split("train"), plan.raft_rows), lab.passages, cfg,
                       retriever=lab.dense, tokenizer=lab.tokenizer)
    val = build_raft(balanced(formulary.load_split("val"), plan.val_rows), lab.passages, cfg,
                     retriever=lab.dense, tokenizer=lab.tokenizer)
    return train, val


def raft_train_config(p: float, plan: Plan) -> TrainConfig:
    """LoRA r16 at lesson 2's rate; only the data (its P) differs between RAFT arms."""
    return TrainConfig(run_name=f"lesson6-{raft_arm(p)}", method="lora", rank=16, learning_rate=LORA_LR, epochs=1,
                       max_steps=plan.max_steps, batch_size=plan.batch_size, seed=plan.seed,
                       early_stopping_patience=None, eval_every=max(2, plan.max_steps // 2), max_length=512)


def finetune_data(plan: Plan) -> tuple[list[dict], list[dict]]:
    """Lesson 2's training and validation rows (``lesson2.data``): same rows, same run hash."""
    from labkit.data import formulary
    from labkit.evaluate.domain import balanced

    arm = plan.lesson2
    return (balanced(formulary.load_split("train"), arm.train_rows),
            balanced(formulary.load_split("val"), arm.val_rows))


def finetune_config(plan: Plan) -> TrainConfig:
    """Exactly ``lesson2.arm_config("r16", plan)``: LoRA r16, lr 1e-3, one epoch, five evaluations.
    Same name, config and rows give the same run folder, so lesson 2's finished run is reused."""
    arm = plan.lesson2
    steps = arm.max_steps or arm.train_rows // 8
    return TrainConfig(run_name="lesson2-r16", method="lora", rank=16, learning_rate=1e-3, epochs=1,
                       max_steps=arm.max_steps, batch_size=8, seed=0, early_stopping_patience=None,
                       eval_every=max(2, steps // 5))


class Lab:
    """Passages, retriever, tokenizer and models, each built once and only when something needs it."""

    def __init__(self, plan: Plan):
        self.plan, self.passages = plan, passages(plan)
        self._dense = self._tok = self._base = None
        self._tuned: dict[str, object] = {}

    @property
    def dense(self):
        from transformers.utils import logging

        from labkit.rag import DenseRetriever

        logging.disable_progress_bar()
        self._dense = self._dense or DenseRetriever(self.passages)
        return self._dense

    @property
    def tokenizer(self):
        from labkit.rag.raft import _tokenizer

        self._tok = self._tok or _tokenizer(model=MODEL)
        return self._tok

    def base(self):
        from labkit import models

        self._base = self._base or models.load(MODEL)
        return self._base

    def tuned(self, run):
        """A fine-tuned model with its adapter merged in (one kept at a time: memory)."""
        key = str(run.path)
        if key not in self._tuned:
            self._tuned.clear()
            loaded = run.load()
            loaded.model = loaded.model.merge_and_unload()
            self._tuned[key] = loaded
        return self._tuned[key]


# ---------------------------------------------------------------------------------------------
# evaluation, cached beside the run it judges


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


def prompts_for(kind: str, rows: list[dict], contexts) -> list[list[dict]] | None:
    """The messages each arm answers: ``plain`` the row's own (no passages), ``rag`` lesson 1's
    RAG prompt (the row's system prompt + passages), ``raft`` the RAFT prompt it was trained on."""
    from labkit import rag
    from labkit.rag.raft import COT_INSTRUCTION

    if kind == "plain":
        return None
    if kind == "rag":
        return [rag.rag_messages(r, c) for r, c in zip(rows, contexts)]
    if kind == "raft":
        return [rag.rag_messages(r, c, system=SYSTEM, instruction=COT_INSTRUCTION) for r, c in zip(rows, contexts)]
    raise UsageError(f"kind={kind!r}: expected 'plain', 'rag' or 'raft'")


def evaluate(name: str, model, rows: list[dict], contexts=None, kind: str = "rag", run=None,
             answer_tokens: int = COT_TOKENS) -> dict:
    """One arm's answers, scored and cached (``model``: called only on a cache miss). Adds, from
    the replies: ``answer_json`` (the last line is a JSON object), the quote check, and the
    behaviour counts (right / abstained / invented / no answer)."""
    from labkit import rag
    from labkit.evaluate.domain import evaluate_domain
    from labkit.rag.raft import quote_check

    messages = prompts_for(kind, rows, contexts)
    max_new = answer_tokens if kind == "raft" else None
    key = _key(run.path.name if run else MODEL, kind, messages or [r["id"] for r in rows], max_new)
    folder = run.path / "evals" if run else paths.runs_dir() / "lesson6-evals"

    def compute():
        return evaluate_domain(model(), rows, limit=len(rows), prompts=messages, max_new_tokens=max_new).to_dict()

    result = cached_json(folder / f"lesson6-{name}-{key}.json", compute)
    replies = [s["reply"] for s in result["scores"]]
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    shown = [contexts[by_id[s["id"]]] if contexts is not None else [] for s in result["scores"]]
    facts = rag.fact_scores(rows, result["scores"])
    return {**result, **reply_stats(result["scores"]), "quote": quote_check(replies, shown),
            "facts_right": facts["facts_right"]}


def reply_stats(scores: list[dict]) -> dict:
    """What the replies did: ``answer_json`` (last line a JSON object) and the shares ``right``,
    ``abstained`` (says not in the passages), ``invented`` (a JSON answer, wrong), ``no_answer``."""
    from labkit.rag.raft import abstained, final_json

    n = len(scores)
    kinds = {"right": 0, "abstained": 0, "invented": 0, "no_answer": 0}
    for s in scores:
        kind = ("right" if s["correct"] else "abstained" if abstained(s["reply"])
                else "invented" if final_json(s["reply"]) is not None else "no_answer")
        kinds[kind] += 1
    return {"answer_json": sum(final_json(s["reply"]) is not None for s in scores) / n,
            "behaviour": {k: v / n for k, v in kinds.items()}}


# ---------------------------------------------------------------------------------------------
# the experiment


def train_raft(p: float, plan: Plan, lab: Lab, board=None):
    """One RAFT arm trained (or reused), and the token lengths of its training rows."""
    from labkit.rag.raft import length_report
    from labkit.sft.train import train

    rows, val = raft_data(p, plan, lab)
    run = train(raft_train_config(p, plan), rows, val, board=board, label=f"RAFT P={p:g}")
    return run, length_report(rows, lab.tokenizer)


def run(plan: Plan, board=None, log=print, lab: Lab | None = None) -> dict:
    """E9 in full: RAG alone, domain fine-tuning without and with RAG, RAFT arms, robustness.

    Returns ``{"plan", "runs": {arm: Run}, "evals": {arm: dict}, "no_oracle": {arm: dict},
    "retrieval": hit@k scores, "rows", "lengths": {arm: token lengths}}``.
    """
    from labkit import rag
    from labkit.rag.raft import without_oracle

    lab = lab or Lab(plan)
    rows, k = test_rows(plan), plan.k
    retrieval = rag.retrieval_scores(lab.dense, rows, ks=(1, k))
    contexts = rag.retrieved_contexts(lab.dense, rows, k)
    missing = without_oracle(lab.dense, rows, lab.passages, k)
    log(f"  MiniLM over {len(lab.passages)} passages: the right document in the top {k} for "
        f"{retrieval[f'hit@{k}']:.0%} of {len(rows)} questions")
    evals, no_oracle, runs = {}, {}, {}

    def note(arm):
        e, m = evals[arm], no_oracle.get(arm)
        log(f"  {arm:<10} accuracy {e['accuracy']:.0%}, fields right {e['partial_credit']:.0%}, answer JSON "
            f"{e['answer_json']:.0%}, {e['seconds_per_answer']:.2f} s per answer"
            + (f"; without the oracle: right {m['behaviour']['right']:.0%}, invented {m['behaviour']['invented']:.0%}"
               f", abstained {m['behaviour']['abstained']:.0%}" if m else ""))

    evals["base-rag"] = evaluate("base-rag", lab.base, rows, contexts)
    if plan.go_further:  # the base model answers in prose with or without the oracle: 0% JSON-right either way
        no_oracle["base-rag"] = evaluate("base-rag-no-oracle", lab.base, rows, missing)
    note("base-rag")
    train2, val2 = finetune_data(plan)
    from labkit.sft.train import train

    runs["ft"] = ft = train(finetune_config(plan), train2, val2, board=board, label="domain FT (lesson 2's r16)")
    log(f"  lesson 2's LoRA r16 {'reused' if ft.reused else 'trained'}: {ft.path.name}")
    tuned = lambda: lab.tuned(ft)  # noqa: E731
    evals["ft"] = evaluate("ft", tuned, rows, None, kind="plain", run=ft)
    evals["ft-rag"] = evaluate("ft-rag", tuned, rows, contexts, run=ft)
    no_oracle["ft-rag"] = evaluate("ft-rag-no-oracle", tuned, rows, missing, run=ft)
    note("ft")
    note("ft-rag")
    lengths = {}
    for p in plan.raft_fractions():
        arm = raft_arm(p)
        r, lengths[arm] = train_raft(p, plan, lab, board)
        runs[arm] = r
        log(f"  {arm} {'reused' if r.reused else 'trained'}: best val loss {r.summary['best_eval_loss']:.3f}, "
            f"rows {lengths[arm]['min']}-{lengths[arm]['max']} tokens (median {lengths[arm]['median']:.0f}), "
            f"{r.summary['wall_seconds'] / max(1, r.summary['steps']):.1f} s per step")
        model = lambda r=r: lab.tuned(r)  # noqa: E731
        evals[arm] = evaluate(arm, model, rows, contexts, kind="raft", run=r, answer_tokens=plan.answer_tokens)
        no_oracle[arm] = evaluate(f"{arm}-no-oracle", model, rows, missing, kind="raft", run=r,
                                  answer_tokens=plan.answer_tokens)
        note(arm)
    return {"plan": plan, "runs": runs, "evals": evals, "no_oracle": no_oracle, "retrieval": retrieval,
            "rows": rows, "lengths": lengths, "contexts": contexts, "missing": missing}


# ---------------------------------------------------------------------------------------------
# reading the results


ARM_LABELS = {"base-rag": "base + RAG", "ft": "domain FT, no RAG", "ft-rag": "domain FT + RAG",
              "raft-p0": "RAFT P=0 + RAG", "raft-p40": "RAFT P=0.4 + RAG", "raft-p70": "RAFT P=0.7 + RAG",
              "raft-p100": "RAFT P=1.0 + RAG"}


def e9_table(results: dict) -> dict[str, dict]:
    """One row per arm: accuracy, fields right, answer JSON, quote check, no-oracle behaviour."""
    table = {}
    for arm, e in results["evals"].items():
        m = results["no_oracle"].get(arm)
        q = e["quote"]
        table[ARM_LABELS.get(arm, arm)] = {
            "accuracy": e["accuracy"], "facts right (any form)": e["facts_right"], "fields right": e["partial_credit"],
            "answer JSON": e["answer_json"],
            "quotes": q["quoted"], "quotes verbatim": q["verbatim_of_quoted"],
            "no oracle: right": m["behaviour"]["right"] if m else None,
            "no oracle: invented": m["behaviour"]["invented"] if m else None,
            "no oracle: abstained": m["behaviour"]["abstained"] if m else None,
            "s per answer": e["seconds_per_answer"]}
    return table


def p_sweep(results: dict) -> list[dict]:
    """The RAFT arms by P: accuracy with retrieval, and right without the oracle."""
    out = []
    for arm in sorted((a for a in results["evals"] if a.startswith("raft-p")), key=lambda a: int(a[6:])):
        out.append({"P": int(arm[6:]) / 100, "accuracy": results["evals"][arm]["accuracy"],
                    "fields right": results["evals"][arm]["partial_credit"],
                    "no oracle: right": results["no_oracle"][arm]["behaviour"]["right"],
                    "best val loss": results["runs"][arm].summary["best_eval_loss"]})
    return out


def replies(results: dict, arms: list[str], n: int = 3, no_oracle: bool = False) -> list[dict]:
    """The first ``n`` questions (one per category) with each arm's reply and the reference."""
    from labkit.rag import question_of

    source = results["no_oracle"] if no_oracle else results["evals"]
    by_arm = {a: {s["id"]: s["reply"] for s in source[a]["scores"]} for a in arms if a in source}
    return [{"question": question_of(r), "reference": r["messages"][-1]["content"],
             **{a: by_arm[a].get(r["id"]) for a in by_arm}} for r in results["rows"][:n]]


# ---------------------------------------------------------------------------------------------
# the claims, next to the article's and the paper's


NO_SIGNAL = "no signal: RAFT learned too little to compare (more steps needed)"
PAPER_T1 = ("Table 1, LLaMA2-7B: HotpotQA RAG 0.03, DSF+RAG 4.41, RAFT 35.28; HuggingFace DSF+RAG 42.59, "
            "RAFT 74.00; Torch Hub RAG 8.60, RAFT 84.95")


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def claims(results: dict) -> list[Claim]:
    """Article | paper | ours | verdict; each verdict one threshold on our numbers (see each row)."""
    ev, miss = results["evals"], results["no_oracle"]
    main = "raft-p70" if "raft-p70" in ev else next(a for a in ev if a.startswith("raft"))
    raft, base, ftr = ev[main], ev["base-rag"], ev["ft-rag"]
    no_signal = raft["partial_credit"] < 0.10
    rows = []
    # facts_right is None when no reply could be read at all: count that as nothing right
    gain = (raft["facts_right"] or 0.0) - (base["facts_right"] or 0.0)
    # RAFT beats RAG alone: 10+ points more answers with every fact right, read leniently (JSON or
    # prose: the base model answers in prose, so the strict JSON accuracy alone would flatter RAFT)
    rows.append(_claim(
        "RAFT beats RAG alone", "medical Q&A: 72% with RAG alone, 92% with RAFT (+20 points)",
        "HotpotQA: LLaMA2-7B + RAG 0.03%, RAFT 35.28%; Torch Hub 8.60% -> 84.95%",
        f"same MiniLM top-{results['plan'].k}; facts right (any form): base + RAG {_pct(base['facts_right'])}, "
        f"{ARM_LABELS[main]} {_pct(raft['facts_right'])} ({100 * gain:+.0f} points); JSON accuracy "
        f"{_pct(base['accuracy'])} vs {_pct(raft['accuracy'])}",
        NO_SIGNAL if no_signal else "held" if gain >= 0.10 else f"did not hold: {100 * gain:+.0f} points"))
    lead = raft["accuracy"] - ftr["accuracy"]
    # RAFT beats domain fine-tuning + RAG: ahead by at least 5 points
    rows.append(_claim(
        "RAFT beats domain fine-tuning + RAG", "-",
        "HotpotQA: DSF + RAG 4.41%, RAFT 35.28%; HuggingFace 42.59% -> 74.00%",
        f"accuracy: domain FT (lesson 2's r16) + RAG {_pct(ftr['accuracy'])}, without RAG "
        f"{_pct(ev['ft']['accuracy'])}; {ARM_LABELS[main]} {_pct(raft['accuracy'])}",
        NO_SIGNAL if no_signal else "held" if lead >= 0.05 else
        f"did not hold: RAFT {100 * lead:+.0f} points against domain FT + RAG"))
    if "raft-p70" in ev and "raft-p100" in ev:
        mix, full = ev["raft-p70"], ev["raft-p100"]
        mix_miss, full_miss = miss["raft-p70"]["behaviour"]["right"], miss["raft-p100"]["behaviour"]["right"]
        # the 70/30 mix is worth it when it loses under 5 points with the oracle and gains 5+ without it
        rows.append(_claim(
            "the 70/30 mix beats always showing the oracle (P = 1.0)",
            "about 70% of examples with the oracle, 30% without",
            "some oracle-free training helps (the paper's P sweep); the best P varied by dataset",
            f"accuracy P=0.7 {_pct(mix['accuracy'])} vs P=1.0 {_pct(full['accuracy'])}; right without the oracle "
            f"{_pct(mix_miss)} vs {_pct(full_miss)}",
            NO_SIGNAL if no_signal else "held" if mix["accuracy"] >= full["accuracy"] - 0.05
            and mix_miss - full_miss >= 0.05 else
            "partly: as good with the oracle, no better without it" if mix["accuracy"] >= full["accuracy"] - 0.05
            else f"did not hold: P=0.7 {100 * (mix['accuracy'] - full['accuracy']):+.0f} points with the oracle"))
    b = miss[main]["behaviour"]
    others = {a: miss[a]["behaviour"] for a in ("base-rag", "ft-rag") if a in miss}
    best_other = max(o["right"] for o in others.values())
    # robustness: without the oracle RAFT still answers right at least 10 points more often than the others
    rows.append(_claim(
        "RAFT copes when retrieval misses (no oracle)",
        "distractor-only examples teach the model to fall back on what it knows",
        "RAFT trained with some oracle-free rows is more robust to bad retrieval",
        f"oracle removed: {ARM_LABELS[main]} right {_pct(b['right'])}, invented {_pct(b['invented'])}, abstained "
        f"{_pct(b['abstained'])}; " + "; ".join(f"{ARM_LABELS[a]} right {_pct(o['right'])}, invented "
                                                 f"{_pct(o['invented'])}" for a, o in others.items()),
        NO_SIGNAL if no_signal else "held" if b["right"] - best_other >= 0.10 else
        f"did not hold: {100 * (b['right'] - best_other):+.0f} points against the best other arm"))
    q = raft["quote"]
    # quotes are faithful when 90%+ of the quoting answers quote verbatim
    rows.append(_claim(
        "RAFT's quotes come from the passages", "-", "answers cite the oracle verbatim between quote markers",
        f"{ARM_LABELS[main]}: {_pct(q['quoted'])} of answers quote; {_pct(q['verbatim_of_quoted'])} of those verbatim",
        NO_SIGNAL if no_signal or not q["quoted"] else "held" if q["verbatim_of_quoted"] >= 0.9 else
        f"did not hold: {_pct(q['verbatim_of_quoted'])} verbatim"))
    return rows


def _claim(claim: str, article: str, paper: str, ours: str, verdict: str) -> Claim:
    held = True if verdict == "held" else False if verdict.startswith("did not hold") else None
    return Claim(claim, article, paper, ours, verdict, held)
