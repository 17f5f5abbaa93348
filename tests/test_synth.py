"""labkit.synth: each stage drops exactly the bad pairs, the schema is strict, the pipeline is a
cached run, the endpoint teacher works against a real local ``transformers serve``, and no API
key ever reaches a file."""

from __future__ import annotations

import json
import os

import pytest

from labkit.data import formulary
from labkit.synth import SynthConfig, run_pipeline
from labkit.synth import card as C
from labkit.synth import personas as P
from labkit.synth import stages as S
from labkit.synth import truth as T
from labkit.synth.schema import json_schema, validate
from labkit.synth.tasks import MIX, formulary_tasks, held_out_facts

FX = formulary.build(0)
PASSAGE = ("KiboLipex interactions:\n"
           "- With ring antibiotics (-Micor drugs, e.g. NideMicor): major interaction, enzyme inhibition; reduce dose.\n"
           "- With seizure guards (-Gravin drugs, e.g. RupuGravin): moderate interaction, enzyme induction; increase dose.\n"
           "- No known interaction with calming agents, mood lifters.")


def _pair(pid, answer, question="Is KiboLipex safe with SuteMicor?", category="interaction", passage=PASSAGE,
          subjects=("KiboLipex", "SuteMicor"), persona="nurse"):
    return {"id": pid, "category": category, "subjects": list(subjects), "topic": "t", "passage": passage,
            "passage_id": "x", "persona": persona, "question": question, "answer": answer}


GOOD = '{"severity": "major", "mechanism": "enzyme inhibition", "action": "reduce dose"}'


class ScriptedTeacher:
    """A stand-in teacher: writes from a function, scores from a function (no model, instant)."""

    kind = "scripted"

    def __init__(self, write=None, score=None, name="scripted"):
        self.name, self._write, self._score = name, write, score
        self.calls = 0

    def describe(self):
        return {"kind": self.kind, "model": self.name}

    def chat(self, conversations, max_tokens=64):
        self.calls += len(conversations)
        return [self._write(c) for c in conversations]

    def choose(self, conversations, options):
        self.calls += len(conversations)
        return [self._score(c, options) for c in conversations]


# ---------------------------------------------------------------------------------------------
# schema


def test_schema_rejects_a_missing_field_a_wrong_value_and_prose():
    assert validate(GOOD, "interaction") == (True, "")
    ok, why = validate('{"severity": "major", "mechanism": "enzyme inhibition"}', "interaction")
    assert not ok and why == "'action' is a required property"
    ok, why = validate('{"severity": "huge", "mechanism": "enzyme inhibition", "action": "avoid"}', "interaction")
    assert not ok and "'huge' is not one of" in why
    assert validate('{"dose_mg": "5", "frequency": "twice daily"}', "dosing")[0] is False   # a string dose
    assert validate('{"dose_mg": 5, "frequency": "twice daily", "note": "x"}', "dosing")[0] is False  # extra key
    assert validate("The dose is 5 mg.", "dosing")[1].startswith("not JSON")
    schema = json_schema("profile")
    assert schema["required"] == ["class", "indication"] and schema["additionalProperties"] is False


# ---------------------------------------------------------------------------------------------
# each stage drops exactly the bad pairs


def test_schema_stage_drops_exactly_the_malformed():
    pairs = [_pair("a", GOOD), _pair("b", '{"severity": "major"}'), _pair("c", "major, avoid"), _pair("d", GOOD)]
    res = S.schema_check(pairs)
    assert [p["id"] for p in res.kept] == ["a", "d"]
    assert {p["id"]: p["why"] for p in res.dropped} == {"b": "'action' is a required property",
                                                        "c": "not JSON (Expecting value)"}
    assert res.record()["dropped_ids"] == ["b", "c"]


def test_grounding_stage_drops_invented_and_stitched_values():
    invented = '{"severity": "major", "mechanism": "additive bleeding", "action": "avoid"}'
    stitched = '{"severity": "major", "mechanism": "enzyme induction", "action": "reduce dose"}'
    none = '{"severity": "none", "mechanism": "none", "action": "none"}'
    dose = _pair("e", '{"dose_mg": 20, "frequency": "once nightly"}', category="dosing",
                 passage="KiboLipex is a lipid lowerer.\nUsual adult dose: 20 mg once nightly.")
    res = S.grounding_check([_pair("a", GOOD), _pair("b", invented), _pair("c", stitched), _pair("d", none), dose,
                             _pair("f", "no json")])
    assert [p["id"] for p in res.kept] == ["a", "d", "e"]
    why = {p["id"]: p["why"] for p in res.dropped}
    assert why == {"b": "not in the passage: mechanism, action", "c": "values from different lines of the passage",
                   "f": "no JSON answer to ground"}
    loose = S.grounding_check([_pair("c", stitched)], same_line=False)
    assert len(loose.kept) == 1  # every value is in the passage somewhere


def test_critic_keeps_the_top_share_by_digit_probabilities():
    bad = {"b", "e"}

    def score(conv, options):
        assert options == ["1", "2", "3", "4", "5"]
        text = conv[-1]["content"]
        is_bad = any(f"Answer: WRONG-{x}" in text for x in bad)
        return {"1": 0.7, "2": 0.2, "3": 0.1, "4": 0.0, "5": 0.0} if is_bad else \
            {"1": 0.0, "2": 0.0, "3": 0.1, "4": 0.3, "5": 0.6}

    pairs = [_pair(x, f"WRONG-{x}" if x in bad else GOOD) for x in "abcdefgh"]
    res = S.critic(pairs, ScriptedTeacher(score=score), keep=0.75)
    assert sorted(p["id"] for p in res.dropped) == ["b", "e"]
    assert res.kept[0]["critic"] == pytest.approx(4.5) and res.dropped[0]["critic"] == pytest.approx(1.4)
    assert res.settings["cut_scores"] == {"interaction": pytest.approx(4.5)}
    with pytest.raises(ValueError, match="keep=0"):
        S.critic(pairs, ScriptedTeacher(score=score), keep=0)


def test_critic_ranks_within_each_category():
    """A critic that scores every interaction pair above every dosing pair (as SmolLM2-135M did)
    must not empty a category: each category keeps its own top 75%."""
    dose = "Passage: x\nUsual adult dose: 20 mg once nightly."
    scores = {"i1": 4.6, "i2": 4.4, "i3": 4.5, "i4": 4.2, "d1": 1.9, "d2": 1.5, "d3": 2.0, "d4": 1.8}
    pairs = [_pair(i, f"ANSWER-{i}") if i[0] == "i" else
             _pair(i, f"ANSWER-{i}", category="dosing", subjects=("KiboLipex",), passage=dose) for i in scores]

    def score(conv, options):
        pid = conv[-1]["content"].split("Answer: ANSWER-")[1].split()[0]
        whole = int(scores[pid])  # the expected digit is scores[pid]: mass split between two digits
        return {o: (whole + 1 - scores[pid]) if int(o) == whole else (scores[pid] - whole) if int(o) == whole + 1
                else 0.0 for o in options}

    res = S.critic(pairs, ScriptedTeacher(score=score), keep=0.75)
    assert sorted(p["id"] for p in res.dropped) == ["d2", "i4"]  # the lowest of each category, 3 of 4 kept
    assert res.settings["cut_scores"] == {"interaction": pytest.approx(4.4), "dosing": pytest.approx(1.8)}
    assert "of its category" in res.dropped[0]["why"]
    # a category of one keeps its pair; 0.5 of 3 rounds half up to 2
    assert len(S.critic(pairs[:1], ScriptedTeacher(score=score), keep=0.5).kept) == 1
    assert len(S.critic(pairs[4:7], ScriptedTeacher(score=score), keep=0.5).kept) == 2


def _yes(table):
    """A scripted self-checker: P(yes) by the answer's ``ANSWER-<id>`` marker."""
    def score(conv, options):
        assert options == ["yes", "no"]
        pid = conv[-1]["content"].split("Your answer: ANSWER-")[1].split()[0]
        return {"yes": table[pid], "no": 1 - table[pid]}
    return ScriptedTeacher(score=score)


def test_self_check_drops_a_target_share_per_category_never_a_fixed_half():
    # P(yes) all below 0.5, as a small model's are: a fixed 0.5 would drop every pair
    table = {f"i{k}": v for k, v in enumerate([0.41, 0.38, 0.45, 0.44, 0.40, 0.43, 0.39])}
    table |= {"d0": 0.30, "d1": 0.36, "d2": 0.33}
    dose = "Usual adult dose: 20 mg once nightly."
    pairs = [_pair(i, f"ANSWER-{i}") if i[0] == "i" else
             _pair(i, f"ANSWER-{i}", category="dosing", subjects=("KiboLipex",), passage=dose) for i in table]
    res = S.self_check(pairs, _yes(table))  # default: drop 15% of 10 = 1.5 -> 2 pairs
    # places within their category: i1 1/7, i6 2/7, d0 1/3, i4 3/7 ... (d0's 0.30 is the lowest
    # P(yes) of all, but dosing answers sit lower in general: a global cut would take dosing first)
    assert [p["id"] for p in res.dropped] == ["i1", "i6"]
    assert res.settings["drop"] == 0.15 and res.settings["cut_scores"] == {"interaction": 0.39}
    assert res.dropped[0]["why"] == "self-check unsure (P(yes) = 0.38, among the 15% least sure, ranked within its category)"
    res = S.self_check(pairs, _yes(table), drop=0.3)  # 3 pairs: then d0 (1/3) before i4 (3/7)
    assert sorted(p["id"] for p in res.dropped) == ["d0", "i1", "i6"]
    assert len(S.self_check(pairs, _yes(table), drop=0.0).kept) == len(pairs)
    with pytest.raises(ValueError, match="drop=1"):
        S.self_check(pairs, _yes(table), drop=1)


def test_self_check_threshold_calibrated_on_a_separate_labelled_slice():
    # the calibration slice: the checker's P(yes) on pairs whose truth is known
    slice_scores = [0.62, 0.55, 0.58, 0.47, 0.44, 0.52, 0.40, 0.60]
    slice_right = [True, True, True, False, False, True, False, False]
    cal = S.calibrate_threshold(slice_scores, slice_right)
    # t = 0.52 catches 3 of 4 wrong (0.47, 0.44, 0.40) and loses no right pair: J = 0.75, the best
    assert cal == {"threshold": 0.52, "recall": 0.75, "right_lost": 0.0, "n": 8}
    # then applied, unchanged, to other pairs
    table = {"a": 0.70, "b": 0.51, "c": 0.53, "d": 0.20}
    res = S.self_check([_pair(i, f"ANSWER-{i}") for i in table], _yes(table), threshold=cal["threshold"])
    assert sorted(p["id"] for p in res.dropped) == ["b", "d"] and res.settings["threshold"] == 0.52
    assert res.settings["drop"] is None and "calibrated threshold 0.520" in res.dropped[0]["why"]
    # nothing to learn from a slice without wrong (or without right) pairs: drop nothing
    assert S.calibrate_threshold([0.3, 0.9], [True, True])["threshold"] == 0.0
    with pytest.raises(ValueError, match="same length"):
        S.calibrate_threshold([0.3], [True, False])


def test_dedup_drops_exact_and_near_repeats_only():
    pairs = [_pair("a", GOOD, "Is KiboLipex safe with SuteMicor?"),
             _pair("b", GOOD, "is kibolipex safe with sutemicor"),            # exact after normalising
             _pair("c", GOOD, "Is KiboLipex safe with SuteMicor ?!"),         # punctuation only
             _pair("d", GOOD, "Is KiboLipex safe to take with SuteMicor?"),   # near repeat, same answer
             _pair("e", '{"severity": "none", "mechanism": "none", "action": "none"}',
                   "Is KiboLipex safe to take with SuteMicor?"),                 # same words, other answer
             _pair("f", GOOD, "What happens if a patient on KiboLipex starts SuteMicor?")]
    res = S.dedup(pairs, threshold=0.9)
    assert [p["id"] for p in res.kept] == ["a", "e", "f"]
    why = {p["id"]: p["why"] for p in res.dropped}
    assert why["b"] == why["c"] == "exact repeat of a" and why["d"].startswith("near repeat of a")


def test_generate_writes_in_persona_and_drops_empty_output():
    tasks = [t.to_dict() for t in formulary_tasks(8, seed=3)]

    def write(conv):
        if conv[-1]["content"].startswith("Voice:"):
            voice = conv[-1]["content"].splitlines()[0]  # "Voice: a ward nurse ..." / "Voice: a patient ..."
            return "Question: \"" + voice.split()[2] + " asks\"\nsecond line"
        return GOOD

    writer = ScriptedTeacher(write=write)
    res = S.generate(tasks, writer, personas=["nurse", "patient"])
    assert len(res.kept) == 8 and res.kept[0]["question"] == "ward asks"  # label, quotes and 2nd line gone
    assert [p["persona"] for p in res.kept[:4]] == ["nurse", "patient", "nurse", "patient"]
    res = S.generate(tasks, ScriptedTeacher(write=lambda c: "" if "Passage:" in c[-1]["content"] and
                                            tasks[1]["passage"] in c[-1]["content"] else "Q?"))
    assert [p["why"] for p in res.dropped] == ["empty answer"] * len(res.dropped) and res.dropped
    ungrounded = S.answer_messages({**tasks[0], "question": "Q?"}, grounded=False)
    assert "Passage" not in json.dumps(ungrounded)


# ---------------------------------------------------------------------------------------------
# tasks, personas, truth, card


def test_tasks_follow_the_mix_avoid_held_out_facts_and_carry_their_passage():
    tasks = formulary_tasks(50, seed=0)
    counts = {c: sum(t.category == c for t in tasks) for c in MIX}
    assert counts == {"interaction": 30, "dosing": 10, "profile": 10}
    held = held_out_facts()
    for t in tasks:
        key = tuple(sorted(t.subjects)) if t.category == "interaction" else t.subjects
        assert (t.category, key) not in held
        assert t.subjects[0] in t.passage
    assert len({(t.category, t.subjects) for t in tasks}) == 50
    assert formulary_tasks(50, seed=0) == tasks and formulary_tasks(50, seed=1) != tasks


def test_personas_spread_evenly_and_neutral_is_off():
    assert [p.name for p in P.assign(5, ["nurse", "patient"])] == ["nurse", "patient", "nurse", "patient", "nurse"]
    assert [p.name for p in P.assign(2, [])] == ["neutral", "neutral"]
    with pytest.raises(KeyError, match="unknown persona"):
        P.get("surgeon")
    mine = P.Persona("vet", "You are a vet.")
    assert P.assign(1, [mine])[0] is mine


def test_truth_judges_topic_schema_and_facts():
    a, b = "LuviParex", next(d.name for d in FX.drugs if d.cls.suffix == "Brelix")
    right = json.dumps(FX.interaction(a, b))
    base = _pair("x", right, question=f"Can {a} go with {b}?", subjects=(a, b))
    assert T.judge(base)["right"]
    assert T.judge({**base, "question": "Can these go together?"})["why"] == "question names no drug"
    assert T.judge({**base, "answer": right.replace("avoid", "monitor")})["why"] == "wrong action"
    assert T.judge({**base, "answer": right[:-1]})["why"] == "not JSON"
    assert T.invented_fields([base, {**base, "answer": right.replace("major", "minor")}])["invented_rate"] == \
        pytest.approx(1 / 6)


def test_stage_table_counts_catches_and_false_drops():
    stages = [{"stage": "generate", "dropped_ids": []}, {"stage": "critic", "dropped_ids": ["b", "c"]},
              {"stage": "schema", "dropped_ids": ["d"]}]
    truth = {i: {"right": i in ("a", "c", "e")} for i in "abcde"}
    gen, crit, schema = T.stage_table(stages, truth)
    assert gen["in"] == 5 and gen["right_after"] == pytest.approx(0.6)
    assert (crit["in"], crit["kept"], crit["wrong_in"], crit["caught"], crit["right_dropped"]) == (5, 3, 2, 1, 1)
    assert crit["precision"] == 0.5 and crit["recall"] == 0.5
    assert (schema["in"], schema["kept"], schema["precision"], schema["recall"]) == (3, 2, 1.0, 1.0)
    assert schema["right_after"] == 1.0


def test_diversity_masks_names_and_counts_distinct_wording():
    same = ["Do KiboLipex and SuteMicor interact?", "Do FemeParex and NideMicor interact?"]
    varied = ["Do KiboLipex and SuteMicor interact?", "My nurse gave me FemeParex, is NideMicor okay with it?"]
    assert C.mask_names(same[0]) == "Do <drug> and <drug> interact?"
    masked = [C.mask_names(q) for q in same]
    assert C.distinct_ngrams(masked, 2) == 0.5 and C.distinct_ngrams([C.mask_names(q) for q in varied], 2) == 1.0
    assert C.distinct_ngrams(same, 2) > 0.5  # unmasked, the names alone would look like variety


# ---------------------------------------------------------------------------------------------
# the pipeline as a cached run (scripted teachers: no model, seconds)


def _truthful_writer(conv):
    """Questions name the task's drugs; answers follow the passage for half the tasks, else err."""
    text = conv[-1]["content"]
    if text.startswith("Voice:"):
        return "Tell me about " + text.split("Topic: ", 1)[1].rstrip(".") + "?"
    names = FX.find_drugs(text.split("Question:")[-1])
    category = "interaction" if len(names) == 2 else ("dosing" if "dose" in text.split("Question:")[-1] else "profile")
    truth = FX.answer(category, names)
    if len(names[0]) % 2:  # a deterministic half of the answers are wrong in their first field
        truth = {**truth, next(iter(truth)): "major" if category == "interaction" else 7 if category == "dosing"
                 else "calming agent"}
    return json.dumps(truth)


def _scripted_roles():
    writer = ScriptedTeacher(write=_truthful_writer, name="writer")
    critic = ScriptedTeacher(score=lambda c, o: {x: 1.0 / len(o) for x in o}, name="critic")
    writer._score = lambda c, o: {"yes": 0.9, "no": 0.1}
    return {"writer": writer, "answerer": writer, "critic": critic}


def test_pipeline_is_a_cached_run_with_a_card(isolated_runs):
    cfg = SynthConfig(name="t-synth", n_tasks=12, dedup_threshold=None)
    roles = _scripted_roles()
    run = run_pipeline(cfg, teachers=roles, log=lambda *_: None)
    assert not run.reused and run.path.name == f"t-synth-{cfg.fingerprint()}"
    for name in ("config.yaml", "pairs.jsonl", "stages.json", "raw.jsonl", "clean.jsonl", "card.json", "card.md",
                 "summary.json"):
        assert (run.path / name).is_file(), name
    assert [s["stage"] for s in run.stages] == ["generate", "critic", "schema", "self-check", "grounding", "dedup"]
    assert run.summary["generated"] == 12 and run.stages[1]["kept"] == 9  # critic keeps 75%
    assert len(run.rows("raw")) == 12 and len(run.rows("clean")) == run.summary["kept"]
    assert all(p["dropped_at"] in (None, *[s["stage"] for s in run.stages]) for p in run.pairs)
    assert run.card.rows_in == 12 and run.card.personas and run.card.teachers["critic"]["model"] == "critic"
    row = run.rows("clean")[0]
    assert [t["role"] for t in row["messages"]] == ["system", "user", "assistant"]
    # the grounding check removed exactly the planted wrong facts that reached it
    truth = T.judge_all(run.pairs)
    table = {r["stage"]: r for r in T.stage_table(run.stages, truth)}
    assert table["grounding"]["precision"] == 1.0 and table["grounding"]["recall"] == 1.0
    assert all(truth[p["id"]]["right"] for p in run.kept())
    calls = roles["writer"].calls
    again = run_pipeline(cfg, teachers=_scripted_roles(), log=lambda *_: None)
    assert again.reused and again.path == run.path and roles["writer"].calls == calls
    other = run_pipeline(cfg.replace(critic_keep=0.5), teachers=_scripted_roles(), log=lambda *_: None)
    # half of each category (7 interaction, 3 dosing, 2 profile), rounded half up: 4 + 2 + 1
    assert other.path != run.path and other.stages[1]["kept"] == 7


def test_config_validates_and_keeps_secrets_and_batch_out_of_the_hash():
    cfg = SynthConfig()
    assert cfg.replace(batch_size=4).fingerprint() == cfg.fingerprint()
    assert cfg.replace(answerer="run:lesson2-full-x").fingerprint() != cfg.fingerprint()
    assert cfg.replace(self_check_threshold=0.4).fingerprint() != cfg.fingerprint()
    assert "key" not in json.dumps(cfg.to_dict()).lower()
    for bad, match in ((dict(critic_keep=1.5), "critic_keep"), (dict(via="grpc"), "via"),
                       (dict(personas=("surgeon",)), "personas"), (dict(n_tasks=0), "n_tasks"),
                       (dict(self_check_drop=1.0), "self_check_drop"), (dict(self_check_threshold=2), "threshold")):
        with pytest.raises(ValueError, match=match):
            SynthConfig(**bad)
    assert SynthConfig.from_dict(yaml_roundtrip(cfg)) == cfg


def test_editing_a_prompt_or_a_persona_changes_the_run_folder(monkeypatch):
    """The hash holds a fingerprint of every prompt the pipeline sends: an edited prompt must not
    reuse a run written with the old one."""
    from labkit.synth.pipeline import prompt_fingerprint

    cfg = SynthConfig()
    before, prompts = cfg.fingerprint(), prompt_fingerprint()
    assert cfg.fingerprint() == before and len(prompts) == 12  # stable
    monkeypatch.setattr(S, "CRITIC_PROMPT", S.CRITIC_PROMPT.replace("Rate this", "Score this"))
    assert cfg.fingerprint() != before and prompt_fingerprint() != prompts
    monkeypatch.undo()
    assert cfg.fingerprint() == before
    nurse = P.get("nurse")
    edited = P.Persona(nurse.name, nurse.voice + " on nights", nurse.examples)
    monkeypatch.setattr(P, "PERSONAS", tuple(edited if p.name == "nurse" else p for p in P.PERSONAS))
    assert cfg.fingerprint() != before
    monkeypatch.undo()
    monkeypatch.setattr(S, "SHOTS", {**S.SHOTS, "dosing": (S.SHOTS["dosing"][0], '{"dose_mg": 20}')})
    assert cfg.fingerprint() != before


def yaml_roundtrip(cfg):
    import yaml

    return yaml.safe_load(cfg.to_yaml())


# ---------------------------------------------------------------------------------------------
# teachers


def test_endpoint_teacher_reads_the_environment_and_never_shows_the_key(monkeypatch):
    from labkit.errors import UsageError
    from labkit.synth.teachers import EndpointTeacher

    for var in ("LABKIT_TEACHER_BASE_URL", "LABKIT_TEACHER_MODEL", "LABKIT_TEACHER_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(UsageError, match="base_url"):
        EndpointTeacher(model="m")
    secret = "sk-test-NEVER-WRITE-1234"
    monkeypatch.setenv("LABKIT_TEACHER_BASE_URL", "http://user:pw@127.0.0.1:9/v1?token=abc")
    monkeypatch.setenv("LABKIT_TEACHER_MODEL", "some-model")
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    teacher = EndpointTeacher.from_env()
    shown = repr(teacher) + json.dumps(teacher.describe())
    assert teacher.model == "some-model" and secret not in shown and "pw" not in json.dumps(teacher.describe())
    assert teacher.describe()["base_url"] == "http://127.0.0.1:9/v1" and "OPENAI_API_KEY" in shown


def test_local_teacher_chat_and_choose(smollm):
    from labkit.synth.teachers import LocalTeacher

    teacher = LocalTeacher(smollm, batch_size=2)
    convs = [[{"role": "user", "content": "What is the capital of France?"}],
             [{"role": "user", "content": "Say the word blue."}]]
    replies = teacher.chat(convs, max_tokens=12)
    assert "Paris" in replies[0] and len(replies) == 2
    # choose() reads the same next-token distribution that greedy chat() starts from, so the
    # option it ranks first is the word the model writes first. (Not "yes": SmolLM2-135M really
    # answers this one "No, Paris is not the capital of France." - a 135M judge is that weak.)
    question = [[{"role": "user", "content": "Is Paris the capital of France? Reply yes or no."}]]
    probs = teacher.choose(question, ["yes", "no"])[0]
    assert set(probs) == {"yes", "no"} and sum(probs.values()) == pytest.approx(1.0)
    said = teacher.chat(question, max_tokens=3)[0].lower()
    assert said.startswith(max(probs, key=probs.get)), (said, probs)
    digits = teacher.choose([[{"role": "user", "content": "How many legs does a cat have? Reply with one digit."}]],
                            ["1", "2", "3", "4", "5"])[0]
    assert set(digits) == {"1", "2", "3", "4", "5"} and sum(digits.values()) == pytest.approx(1.0)
    assert teacher.timing.calls == {"chat": 3, "choose": 2}


# ---------------------------------------------------------------------------------------------
# a real OpenAI-compatible server on loopback: transformers serve


@pytest.fixture(scope="module")
def live_server():
    pytest.importorskip("fastapi")
    from labkit.synth.server import start

    server = start("smollm2-135m-instruct", wait_s=600)
    try:
        yield server
    finally:
        server.stop()
        assert server.process.poll() is not None


@pytest.mark.slow
def test_endpoint_teacher_against_the_live_local_server(live_server, isolated_runs, monkeypatch, tmp_path):
    from labkit.synth.teachers import EndpointTeacher

    secret = "sk-fake-labkit-test-0123456789"
    monkeypatch.setenv("LABKIT_TEACHER_API_KEY", secret)
    monkeypatch.setenv("LABKIT_TEACHER_BASE_URL", live_server.base_url)
    teacher = EndpointTeacher(model=live_server.model, concurrency=2)
    assert "Paris" in teacher.chat([[{"role": "user", "content": "What is the capital of France?"}]], 16)[0]
    probs = teacher.choose([[{"role": "user", "content": "Is Paris in France? Reply yes or no."}]], ["yes", "no"])[0]
    assert sum(probs.values()) == pytest.approx(1.0)

    cfg = SynthConfig(name="t-endpoint", writer=live_server.model, via="endpoint", n_tasks=3, dedup_threshold=None)
    run = run_pipeline(cfg, log=lambda *_: None)  # base URL and key from the environment
    assert run.summary["generated"] >= 1 and run.summary["via"] == "endpoint"
    assert all(p["question"] for p in run.pairs) and run.stages[0]["in"] == 3
    assert run.summary["teachers"]["writer"]["kind"] == "endpoint"
    # the key never reaches a file: run folder, question cache, anything under runs/
    written = [p for p in isolated_runs.rglob("*") if p.is_file()]
    assert len(written) >= 8
    for path in written:
        assert secret not in path.read_text(errors="replace"), path
    assert "LABKIT_TEACHER_API_KEY" in json.dumps(run.summary)  # says where it came from, not what it is


def test_answer_prompt_repeats_the_keys_and_drops_are_shown_with_their_truth():
    msgs = S.answer_messages(_pair("a", "", question="Q?"))
    assert msgs[-1]["content"].endswith('Reply with {"severity": ..., "mechanism": ..., "action": ...}.')
    assert msgs[1]["content"].endswith(S.key_skeleton("interaction"))
    trained = S.answer_messages(_pair("a", "", question="Q?"), style="trained")  # a fine-tuned teacher's own format
    assert trained == [{"role": "system", "content": formulary.SYSTEM_PROMPT},
                       {"role": "user", "content": f"Passage:\n{PASSAGE}\n\nQuestion: Q?"}]
    assert S.answer_messages(_pair("a", "", question="Q?"), grounded=False, style="trained")[-1]["content"] == "Q?"
    with pytest.raises(ValueError, match="style='zero-shot'"):
        S.answer_messages(_pair("a", ""), style="zero-shot")
    pairs = [{**_pair(i, GOOD), "dropped_at": stage, "why": f"why {i}"}
             for i, stage in (("a", "critic"), ("b", "critic"), ("c", None), ("d", "schema"))]
    truth = {"a": {"right": True, "why": "right"}, "b": {"right": False, "why": "wrong action"},
             "c": {"right": True, "why": "right"}, "d": {"right": False, "why": "not JSON"}}
    got = [(e["stage"], e["kind"], e["why"]) for e in T.drop_examples(pairs, ["critic", "schema"], truth)]
    assert got == [("critic", "caught", "why b"), ("critic", "lost", "why a"), ("schema", "caught", "why d")]
    table = T.stage_markdown([{"stage": "critic", "in": 4, "kept": 3, "wrong_in": 2, "caught": 1, "right_dropped": 0,
                               "precision": 1.0, "recall": 0.5, "right_after": None}])
    assert table.splitlines()[-1] == "| critic | 4 | 3 | 2 | 1 | 0 | 100% | 50% | - |"


# ---------------------------------------------------------------------------------------------
# a served child never outlives its parent


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has already ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc (Linux)")
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "exit"])
def test_a_spawned_child_dies_with_its_parent(how):
    """What ``transformers serve`` is started with: a parent killed (even by SIGKILL), terminated,
    or exiting normally leaves no child running. A ``sleep`` stands in for the server."""
    import signal
    import subprocess
    import sys
    import time

    script = ("import sys, time\nfrom labkit.synth.server import spawn\n"
              "child = spawn(['sleep', '60'])\nprint(child.pid, flush=True)\n"
              + ("time.sleep(60)\n" if how != "exit" else ""))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    assert _alive(pid) or how == "exit"
    if how != "exit":
        parent.send_signal(getattr(signal, how))
    parent.wait(20)
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), f"the child outlived its parent ({how})"
