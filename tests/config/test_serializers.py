"""ReusableSerializer: one instance per class and thread, nothing carried between uses."""

import threading

import pytest
from rest_framework import serializers

from config import fields
from config.serializers import ReusableSerializer


class _Inner(serializers.Serializer):
    skus = serializers.ListField(child=fields.CharField(), required=False, default=list)
    views = fields.IntegerField(min_value=0, required=False)


class _Body(ReusableSerializer):
    customer_id = fields.CharField()
    inner = _Inner(required=False, default=dict)

    def validate_customer_id(self, value):
        if value == "banned":
            raise serializers.ValidationError("Banned.")
        return value


def test_same_instance_per_thread_and_no_state_carried_over():
    bad = _Body.for_data({"customer_id": 5, "inner": {"views": -1}})
    assert not bad.is_valid()
    assert set(bad.errors) == {"customer_id", "inner"}
    assert set(bad.errors["inner"]) == {"views"}

    good = _Body.for_data({"customer_id": "c-1", "inner": {"skus": ["A", "B"]}})
    assert good is bad  # built once for this thread
    assert good.is_valid(), good.errors
    assert good.errors == {}
    first = good.validated_data
    assert first == {"customer_id": "c-1", "inner": {"skus": ["A", "B"]}}

    again = _Body.for_data({"customer_id": "c-2"})
    assert again.is_valid(), again.errors
    assert again.validated_data == {"customer_id": "c-2", "inner": {}}
    # The previous request's data is its own object, untouched by the next use.
    assert first == {"customer_id": "c-1", "inner": {"skus": ["A", "B"]}}
    third = _Body.for_data({"customer_id": "c-3", "inner": {"skus": ["A", "B"]}})
    assert third.is_valid()
    assert third.validated_data["inner"]["skus"] is not first["inner"]["skus"]

    banned = _Body.for_data({"customer_id": "banned"})
    assert not banned.is_valid()
    assert banned.errors == {"customer_id": ["Banned."]}


def test_same_results_as_a_fresh_instance():
    bodies = [
        {"customer_id": "c", "inner": {"skus": ["A"], "views": 3}},
        {"customer_id": "c", "inner": {"skus": "A"}},
        {"inner": {"views": "3"}},
        {"customer_id": "banned", "inner": None},
        [],
    ]
    for body in bodies:
        fresh = _Body(data=body)
        reused = _Body.for_data(body)
        assert reused.is_valid() == fresh.is_valid(), body
        assert reused.errors == fresh.errors, body
        if not fresh.errors:
            assert reused.validated_data == fresh.validated_data, body


def test_validated_data_needs_is_valid_on_each_use():
    serializer = _Body.for_data({"customer_id": "c-1"})
    assert serializer.is_valid()
    serializer = _Body.for_data({"customer_id": "c-2"})
    with pytest.raises(AssertionError):  # the previous use's result must be gone
        serializer.validated_data  # noqa: B018


def test_each_thread_has_its_own_instance():
    mine = _Body.for_data({"customer_id": "main"})
    seen = {}

    def other():
        theirs = _Body.for_data({"customer_id": "thread"})
        seen["instance"] = theirs
        seen["valid"] = theirs.is_valid()
        seen["data"] = dict(theirs.validated_data)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["instance"] is not mine
    assert seen["valid"] and seen["data"]["customer_id"] == "thread"
    assert mine.is_valid() and mine.validated_data["customer_id"] == "main"


def test_context_is_replaced_not_merged():
    serializer = _Body.for_data({"customer_id": "c"}, context={"request": "first"})
    assert serializer.context == {"request": "first"}
    serializer = _Body.for_data({"customer_id": "c"})
    assert serializer.context == {}
