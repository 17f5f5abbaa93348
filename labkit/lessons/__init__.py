"""The course's lessons, one module each, on top of the engine (models, runs, sft, embed, rag, data,
evaluate, quiz). The rule: lessons import the engine; nothing in the engine imports a lesson.

Every lesson module has the same shape:

* ``TITLE`` and ``NOTEBOOK``;
* ``Plan.for_profile(profile=None)``: how big the experiments are (``smoke`` for CI, ``full`` for
  real results); the only place that reads ``LABKIT_PROFILE``;
* ``run(plan, board=None, log=print)``: trains or reuses every arm, evaluates it (evaluations
  cached beside their runs) and returns a results dict;
* ``claims(results)``: a list of :class:`labkit.evaluate.claims.Claim`, each verdict one threshold.

``labkit run <lesson>`` runs one headless (an instructor pre-runs a room's experiments this way);
``labkit run all`` runs every lesson; ``labkit run`` lists them.

>>> from labkit import lessons
>>> results, claims = lessons.run_lesson("lesson2", profile="smoke")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
import time
from types import ModuleType

from labkit.errors import UsageError

#: lesson id -> module under labkit.lessons, in course order. A lesson is registered once its notebook
#: has landed executed.
LESSONS: dict[str, str] = {
    "lesson1": "labkit.lessons.lesson1",
    "lesson2": "labkit.lessons.lesson2",
    "lesson3": "labkit.lessons.lesson3",
    "lesson4": "labkit.lessons.lesson4",
    "lesson5": "labkit.lessons.lesson5",
    "lesson6": "labkit.lessons.lesson6",
    "lesson6b": "labkit.lessons.lesson6b",
}


def get(name: str) -> ModuleType:
    """The lesson module for ``name`` (e.g. ``lesson2``)."""
    if name not in LESSONS:
        raise UsageError(f"unknown lesson {name!r}; known: {', '.join(LESSONS)}, all")
    return importlib.import_module(LESSONS[name])


def run_lesson(name: str, profile: str | None = None, board=None, log=print) -> tuple[dict, list]:
    """Run one lesson's experiments headless and return ``(results, claims)``."""
    module = get(name)
    plan = module.Plan.for_profile(profile)
    log(plan.describe())
    results = module.run(plan, board=board, log=log)
    return results, module.claims(results)


def cli_run(args) -> int:
    """``labkit run [LESSON|all] [--profile smoke|full]``."""
    if args.profile:
        os.environ["LABKIT_PROFILE"] = args.profile
    if not args.lesson:
        for name in LESSONS:
            print(f"{name:<10} {get(name).TITLE} (notebooks/{get(name).NOTEBOOK})")
        return 0
    names = list(LESSONS) if args.lesson == "all" else [args.lesson]
    for name in names:
        module = get(name)
        print(f"== {name}: {module.TITLE}", flush=True)
        start = time.perf_counter()
        _, claims = run_lesson(name, log=lambda line: print(line, flush=True))
        for c in claims:
            print(f"  claim: {c.claim}: {c.verdict}")
        print(f"== {name} done in {time.perf_counter() - start:.0f} s", flush=True)
    return 0
