"""Segment rules on customer attributes (pure): validation and matching."""

from collections.abc import Mapping, Sequence
from numbers import Real

OPS = ("eq", "ne", "in", "not_in", "gte", "lte")


def _storable(value: object) -> bool:
    """No NUL and no lone surrogate in any string or key: PostgreSQL's jsonb cannot hold them."""
    pending = [value]  # a loop, not recursion: a deeply nested value is no RecursionError
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item or any("\ud800" <= ch <= "\udfff" for ch in item):
                return False
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, Mapping):
            pending.extend(str(key) for key in item)
            pending.extend(item.values())
    return True


def targeting_errors(rules: object) -> list[str]:
    """Human-readable problems with a rule list; empty when valid."""
    if not isinstance(rules, list):
        return ["Targeting must be a list of rules."]
    errors = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping):
            errors.append(f"Rule {i}: must be an object with attribute, op and value.")
            continue
        attribute, op, value = rule.get("attribute"), rule.get("op"), rule.get("value")
        if not isinstance(attribute, str) or not attribute:
            errors.append(f"Rule {i}: 'attribute' must be a non-empty string.")
        if op not in OPS:
            errors.append(f"Rule {i}: 'op' must be one of {', '.join(OPS)}.")
        elif op in ("in", "not_in") and not isinstance(value, list):
            errors.append(f"Rule {i}: '{op}' needs a list value.")
        elif op in ("gte", "lte") and (not isinstance(value, Real) or isinstance(value, bool)):
            errors.append(f"Rule {i}: '{op}' needs a number.")
        if not _storable(value):
            errors.append(f"Rule {i}: 'value' must not contain NUL characters or lone surrogates.")
        extra = set(rule) - {"attribute", "op", "value"}
        if extra:
            errors.append(f"Rule {i}: unknown key(s) {', '.join(sorted(extra))}.")
    return errors


def _equal(actual: object, expected: object) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 (Python's True == 1 would say it is)."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    return actual == expected


def _matches(rule: Mapping, attributes: Mapping) -> bool:
    op, expected = rule["op"], rule.get("value")
    if rule["attribute"] not in attributes:
        return op in ("ne", "not_in")
    actual = attributes[rule["attribute"]]
    if op == "eq":
        return _equal(actual, expected)
    if op == "ne":
        return not _equal(actual, expected)
    if op == "in":
        return any(_equal(actual, item) for item in expected)
    if op == "not_in":
        return not any(_equal(actual, item) for item in expected)
    if not isinstance(actual, Real) or isinstance(actual, bool):
        return False
    return actual >= expected if op == "gte" else actual <= expected


def matches(rules: Sequence[Mapping], attributes: Mapping) -> bool:
    """True when every rule matches (an empty rule list matches everyone)."""
    return all(_matches(rule, attributes) for rule in rules)
