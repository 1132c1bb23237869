"""The patterns config/schema.py writes into the OpenAPI schema mean what DRF does.

Checked with jsonschema-rs (the validator Schemathesis uses) as well as Python's `re`: JSON
Schema patterns are ECMA-262, whose `\\s` differs from Python's, hence the spelled-out class.
"""

import re
import sys

import jsonschema_rs
import pytest
from rest_framework import serializers

from config.schema import NOT_BLANK_PATTERN, TRIMMED_WHITESPACE


def test_trimmed_whitespace_is_exactly_what_str_strip_removes():
    listed = re.compile(f"[{TRIMMED_WHITESPACE}]")
    every = [chr(cp) for cp in range(sys.maxunicode + 1)]
    assert {ch for ch in every if listed.fullmatch(ch)} == {ch for ch in every if not ch.strip()}


@pytest.mark.parametrize(
    "text",
    ["CAM-1", "  CAM-1 ", "\u001c\r", " ", "\t\n\u000b\f\r", "\u3000x", "\ufeff", "\x85", "a\x00b"],
)
def test_not_blank_pattern_accepts_what_a_trimming_char_field_keeps(text):
    field = serializers.CharField()
    try:
        field.run_validation(text)
        kept = True
    except serializers.ValidationError:
        kept = False
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": NOT_BLANK_PATTERN})
    assert bool(re.fullmatch(NOT_BLANK_PATTERN, text)) is kept
    assert validator.is_valid(text) is kept
