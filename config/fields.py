"""Serializer fields that take JSON types as the OpenAPI schema states them.

DRF's fields are made for HTML forms too, so they coerce: `CharField` takes 5 as "5",
`IntegerField` takes "5", `BooleanField` takes "yes" and 0. A JSON body is typed, and the schema
says `string`, `integer` or `boolean`, so request bodies use these instead and refuse the
wrong type with a 400 naming the field. (Query strings are text: their serializers keep DRF's.)
"""

from rest_framework import serializers


class _StringOnly:
    """A JSON string, not a number coerced to one."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class _NumberOnly:
    """A JSON number, not a string and not true/false."""

    def to_internal_value(self, data):
        if isinstance(data, bool | str):
            self.fail("invalid")
        return super().to_internal_value(data)


class CharField(_StringOnly, serializers.CharField):
    pass


class SlugField(_StringOnly, serializers.SlugField):
    pass


class IntegerField(_NumberOnly, serializers.IntegerField):
    """An integer (1.0 counts, as in JSON Schema); not a string and not true/false."""


class FloatField(_NumberOnly, serializers.FloatField):
    """A number; not a string and not true/false."""


class BooleanField(serializers.BooleanField):
    """true or false; not "yes", 1 or "0"."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data
