"""The answer schema as JSON Schema, and strict validation with ``jsonschema``.

The formulary's answer format (:data:`labkit.data.formulary.ANSWER_SCHEMA`: the fields of each
category and their allowed values) becomes one JSON Schema per category: every field required,
no other field allowed, closed vocabularies as ``enum``, the dose a plain integer. A generated
answer must parse as one JSON object *and* validate; one malformed example teaches a student a
bad habit.

>>> ok, why = validate('{"dose_mg": 5, "frequency": "twice daily"}', "dosing")
>>> ok, why
(True, '')
>>> validate('{"dose_mg": 5}', "dosing")
(False, "'frequency' is a required property")
"""

from __future__ import annotations

import functools
import json


def json_schema(category: str, answer_schema: dict | None = None) -> dict:
    """The JSON Schema of one answer category."""
    if answer_schema is None:
        from labkit.data.formulary import ANSWER_SCHEMA

        answer_schema = ANSWER_SCHEMA
    if category not in answer_schema:
        raise KeyError(f"no answer schema for category {category!r}; known: {', '.join(answer_schema)}")
    props = {}
    for key, allowed in answer_schema[category].items():
        props[key] = {"type": "integer"} if allowed == "integer" else {"type": "string", "enum": list(allowed)}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"{category} answer",
            "type": "object", "properties": props, "required": list(props), "additionalProperties": False}


@functools.lru_cache(maxsize=None)
def _validator(category: str):
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json_schema(category))


def validate(answer_text: str, category: str) -> tuple[bool, str]:
    """``(True, "")`` when ``answer_text`` is exactly one JSON object valid for ``category``;
    otherwise ``(False, why)`` with jsonschema's own message (or "not JSON ...")."""
    try:
        value = json.loads(answer_text.strip())
    except json.JSONDecodeError as exc:
        return False, f"not JSON ({exc.msg})"
    errors = sorted(_validator(category).iter_errors(value), key=lambda e: (list(e.path), e.message))
    if errors:
        return False, errors[0].message
    return True, ""
