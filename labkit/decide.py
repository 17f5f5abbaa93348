"""RAG, fine-tuning or RAFT? The lesson's decision flowchart as a function and a widget.

The flowchart asks four questions in a fixed order and stops at the first "yes":

1. Does the knowledge change often?            yes -> RAG (it stays current)
2. Do you need a consistent format or style?   yes -> fine-tune (format control)
3. Does the model misuse domain terms?         yes -> fine-tune (vocabulary)
4. Do you need retrieval *and* expertise?      yes -> RAFT (both combined)
   otherwise                                        -> stay with RAG

Two checks from the cheat sheet sit beside it: with fewer than about 200 good examples, do not
fine-tune yet (few-shot prompting and RAG, and grow the data, perhaps synthetically); and when
search returns the wrong documents, the model to tune is the embedding model, not the LLM.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

APPROACHES = ("rag", "fine-tune", "raft")
MIN_EXAMPLES = 200

QUESTIONS = (
    ("data_changes_often", "Does the knowledge change often (daily prices, news, a live catalogue)?",
     "rag", "Use RAG: knowledge in a store stays current; anything trained in goes stale."),
    ("needs_consistent_format", "Do you need a consistent output format or style?",
     "fine-tune", "Fine-tune for format control: ~99% consistency where prompting stops near 80%."),
    ("domain_terms_misused", "Does the model misuse domain terms even with the definitions in context?",
     "fine-tune", "Fine-tune for vocabulary: the model has to learn the domain's language."),
    ("needs_retrieval_and_expertise", "Do answers need both retrieved facts and a specialist's reading of them?",
     "raft", "Use RAFT: fine-tune the model to reason over retrieved documents, distractors included."),
)
FALLBACK = "Stay with RAG: nothing here calls for training. Most systems start here."


@dataclass(frozen=True)
class Situation:
    """Yes/no answers to the flowchart, plus the cheat sheet's two side checks."""

    data_changes_often: bool = False
    needs_consistent_format: bool = False
    domain_terms_misused: bool = False
    needs_retrieval_and_expertise: bool = False
    search_returns_wrong_documents: bool = False
    examples: int | None = None  # good training examples available; None = not known

    def __post_init__(self):
        if self.examples is not None and self.examples < 0:
            raise ValueError(f"examples must be 0 or more, got {self.examples}")


@dataclass(frozen=True)
class Recommendation:
    approach: str               # rag | fine-tune | raft
    reason: str
    path: tuple[str, ...]       # the questions walked, each with its answer
    notes: tuple[str, ...] = ()

    def to_text(self) -> str:
        lines = [f"{q}" for q in self.path] + [f"=> {self.reason}"]
        return "\n".join(lines + [f"Note: {n}" for n in self.notes])


def recommend(situation: Situation) -> Recommendation:
    """Walk the flowchart for ``situation``; add the side notes that apply."""
    path: list[str] = []
    approach, reason = "rag", FALLBACK
    for field, question, outcome, why in QUESTIONS:
        answer = getattr(situation, field)
        path.append(f"{question} {'yes' if answer else 'no'}")
        if answer:
            approach, reason = outcome, why
            break
    notes = []
    if approach != "rag" and situation.examples is not None and situation.examples < MIN_EXAMPLES:
        notes.append(f"With {situation.examples} examples (under ~{MIN_EXAMPLES}) do not fine-tune yet: use few-shot "
                     "prompting with RAG now, and grow the dataset first, with a synthetic-data pipeline if need be.")
    if situation.search_returns_wrong_documents:
        notes.append("Search returns the wrong documents: fine-tune the embedding model. Tuning the LLM cannot "
                     "fix what retrieval never hands it.")
    if approach == "rag" and situation.data_changes_often and (situation.needs_consistent_format
                                                               or situation.domain_terms_misused):
        notes.append("Format or vocabulary problems on top of fast-changing data: keep the facts in retrieval and "
                     "consider RAFT, which teaches the model to work with retrieved documents rather than "
                     "memorise them.")
    return Recommendation(approach, reason, tuple(path), tuple(notes))


def widget():
    """The flowchart as toggles; the recommendation updates as you change them."""
    import ipywidgets as widgets

    from labkit.ui import FallbackBox

    toggles = {field: widgets.ToggleButtons(options=[("no", False), ("yes", True)], value=False,
                                            style={"button_width": "4em"})
               for field, *_ in QUESTIONS}
    wrong_docs = widgets.ToggleButtons(options=[("no", False), ("yes", True)], value=False,
                                       style={"button_width": "4em"})
    examples = widgets.BoundedIntText(value=1000, min=0, max=10_000_000, step=100, layout={"width": "9em"})
    result = widgets.HTML()
    rows = [widgets.HBox([widgets.HTML(f"<b>{i}.</b> {html.escape(q)}", layout={"width": "34em"}), toggles[f]])
            for i, (f, q, *_) in enumerate(QUESTIONS, start=1)]
    rows.append(widgets.HBox([widgets.HTML("Does search return the wrong documents?", layout={"width": "34em"}),
                              wrong_docs]))
    rows.append(widgets.HBox([widgets.HTML("Good training examples you have:", layout={"width": "34em"}),
                              examples]))

    def update(_=None):
        rec = recommend(Situation(**{f: t.value for f, t in toggles.items()},
                                  search_returns_wrong_documents=wrong_docs.value, examples=examples.value))
        steps = "".join(f"<li>{html.escape(p)}</li>" for p in rec.path)
        notes = "".join(f"<p>&#9888; {html.escape(n)}</p>" for n in rec.notes)
        result.value = (f"<ol style='opacity:0.75'>{steps}</ol><p style='font-size:1.15em'><b>"
                        f"{rec.approach.upper()}</b>: {html.escape(rec.reason)}</p>{notes}")

    for control in (*toggles.values(), wrong_docs, examples):
        control.observe(update, names="value")
    update()
    return FallbackBox(rows + [result], plain=flowchart_markdown(), markdown=flowchart_markdown())


def flowchart_markdown() -> str:
    """The flowchart as a Markdown list: the static stand-in for the widget."""
    steps = [f"{i}. {q} **Yes:** {why}" for i, (_, q, _, why) in enumerate(QUESTIONS, start=1)]
    return "\n".join(["*Decision helper (interactive when the notebook runs).*", "", *steps,
                      f"{len(QUESTIONS) + 1}. All no: {FALLBACK}"])
