"""OpenAPI generation: unique component names for the one-APIView-per-operation style."""

import copy

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.drainage import has_override
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, force_instance
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from experiments.apikeys import IsStorefront

NO_NUL_PATTERN = "^[^\\u0000]*$"
# What `str.strip()` removes (exactly `str.isspace()`), spelled out: JSON Schema patterns are
# ECMA-262, whose `\s` is another set (no U+001C-U+001F or U+0085, but U+FEFF).
TRIMMED_WHITESPACE = (
    "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
# A trimmed string that may not be blank: no NUL, and something left once trimmed.
NOT_BLANK_PATTERN = f"^[^\\u0000]*[^\\u0000{TRIMMED_WHITESPACE}][^\\u0000]*$"

# --- Error responses --------------------------------------------------------------------------
# Every operation documents the error bodies config/exceptions.py and DRF really send, derived
# from the view's own configuration, so clients (and Schemathesis) can rely on them.

VALIDATION_ERROR = {
    "type": "object",
    "description": (
        "Bad input: each offending field maps to a list of messages (an object for nested fields, "
        "a list with one entry per item for lists); `non_field_errors` for rules across fields; "
        "`detail` for an error not tied to one field."
    ),
    "additionalProperties": {},
    "example": {"key": ["This field is required."]},
}
ERROR_DETAIL = {
    "type": "object",
    "description": "An error with a human-readable `detail` (and sometimes more context keys).",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "additionalProperties": {},
    "example": {"detail": "Not found."},
}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer"},
        "description": "Seconds to wait before retrying.",
    }
}
ERROR_DESCRIPTIONS = {
    "400": "Bad input; the body names the fields.",
    "401": "Missing, invalid, revoked or expired credentials.",
    "403": "The credentials may not do this (staff only, or an invalid survey token).",
    "404": "Not found.",
    "406": "The Accept header excludes application/json.",
    "409": "Conflicts with the current state.",
    "413": "The request is too large.",
    "415": "The body is not JSON.",
    "429": (
        "Too many requests from this key, token or address, or too many failed "
        "authentications from this address; see Retry-After."
    ),
    "503": "The database is unavailable; try again after Retry-After seconds.",
}


class OfferlabErrorResponsesMixin:
    def _error_component(self, name: str, schema: dict) -> dict:
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _error_response(self, code: str, description: str | None = None) -> dict:
        schema = (
            self._error_component("ValidationError", VALIDATION_ERROR)
            if code == "400"
            else self._error_component("ErrorDetail", ERROR_DETAIL)
        )
        response = {
            "content": {"application/json": {"schema": schema}},
            "description": description or ERROR_DESCRIPTIONS.get(code, ""),
        }
        if code in ("429", "503"):
            response["headers"] = RETRY_AFTER
        return response

    def _error_codes(self) -> list[str]:
        view = self.view
        has_body = self.method in ("POST", "PUT", "PATCH") and bool(self._get_request_body())
        codes = ["406", "503"]
        if has_body:
            codes += ["400", "415"]
        elif self.get_override_parameters() or self._get_filter_parameters():
            codes.append("400")
        if "{" in self.path or has_body:
            # An unknown object in the path, or one the body refers to (experiment, sku…).
            codes.append("404")
        permissions = view.get_permissions()
        if not all(isinstance(p, AllowAny) for p in permissions):
            authenticators = view.get_authenticators()
            request = getattr(view, "request", None)
            if authenticators and authenticators[0].authenticate_header(request):
                codes.append("401")
            if not all(isinstance(p, IsStorefront) for p in permissions):
                codes.append("403")
        if view.get_throttles() or any(
            getattr(a, "counts_failures", False) for a in view.get_authenticators()
        ):
            codes.append("429")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, response in responses.items():
            # A code the view declares with a description only: give it the real body.
            if code[0] in "45" and not response.get("content"):
                responses[code] = self._error_response(code, response.get("description"))
        for code in self._error_codes():
            responses.setdefault(code, self._error_response(code))
        return dict(sorted(responses.items()))


def _merge(schema: dict, rules: dict) -> None:
    """Add `rules` to `schema`, descending into the objects both have (e.g. `properties`)."""
    for key, value in rules.items():
        if isinstance(value, dict) and isinstance(schema.get(key), dict):
            _merge(schema[key], value)
        else:
            schema[key] = copy.deepcopy(value)


def _trimmed_and_not_blank(field) -> bool:
    return (
        isinstance(field, serializers.CharField) and field.trim_whitespace and not field.allow_blank
    )


class OfferlabValidationSchemaMixin:
    """Constraints DRF enforces but drf-spectacular does not write down.

    A request serializer may also declare `schema_rules`: JSON Schema for its rules across
    fields (e.g. `contains` for "exactly one control"), merged into its request component.
    """

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        if direction != "request":
            return schema
        serializer = force_instance(serializer)
        properties = schema.get("properties", {})
        for name, field in serializer.fields.items():
            prop = properties.get(name)
            if isinstance(field, serializers.ListField) and isinstance(prop, dict):
                field, prop = field.child, prop.get("items")
            # DRF trims these and refuses what is left empty ("\r" is blank, not a sku).
            if (
                isinstance(prop, dict)
                and _trimmed_and_not_blank(field)
                and prop.get("pattern") == NO_NUL_PATTERN
            ):
                prop["pattern"] = NOT_BLANK_PATTERN
        rules = getattr(serializer, "schema_rules", None)
        if rules:
            _merge(schema, rules)
        return schema

    def _insert_field_validators(self, field, schema):
        if has_override(field, "field"):
            # A schema given with extend_schema_field is the whole truth: drf-spectacular would
            # wrap a blank-allowing pattern in a `oneOf` with "", which "" then matches twice.
            return
        super()._insert_field_validators(field, schema)
        if isinstance(field, serializers.ListSerializer) and schema.get("type") == "array":
            # `many=True` with min_length / max_length (events, variants, questions).
            min_items = field.min_length if field.min_length is not None else 0
            if not field.allow_empty:
                min_items = max(min_items, 1)
            if min_items:
                schema["minItems"] = max(schema.get("minItems", 0), min_items)
            if field.max_length is not None:
                schema["maxItems"] = min(schema.get("maxItems", field.max_length), field.max_length)
        if (
            schema.get("type") == "string"
            and "pattern" not in schema
            and any(isinstance(v, ProhibitNullCharactersValidator) for v in field.validators)
        ):
            # Every CharField refuses NUL (PostgreSQL cannot store it).
            schema["pattern"] = NO_NUL_PATTERN


class OfferlabAutoSchema(OfferlabValidationSchemaMixin, OfferlabErrorResponsesMixin, AutoSchema):
    """Names a serializer nested in a view after the view.

    Every view has its own `InputSerializer` / `OutputSerializer`; without the view's name they
    would all become the same "Input"/"Output" component and overwrite each other.
    `AssignmentCreateApi.InputSerializer` becomes `AssignmentCreateInput(Request)`.
    """

    def get_serializer_name(self, serializer, direction) -> str:
        name = super().get_serializer_name(serializer, direction)
        outer = type(serializer).__qualname__.rpartition(".")[0].rpartition(".")[2]
        if outer and not outer.startswith("<"):
            return outer.removesuffix("Api") + name
        return name
