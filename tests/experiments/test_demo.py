"""`manage.py demo` seeds a running experiment, assigns customers, prints the split and login."""

import io
import re

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from experiments.models import Assignment, Experiment

pytestmark = pytest.mark.django_db


def _demo(customers: int) -> str:
    out = io.StringIO()
    call_command("demo", "--customers", str(customers), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_demo_prints_the_split_and_a_login_that_works(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    output = _demo(300)

    experiment = Experiment.objects.get(key="demo-pp-email-timing")
    assert experiment.status == "running"
    rows = dict(re.findall(r"^\s+(now|next-day)\s+([\d,]+)\s+[\d.]+%", output, re.M))
    assert set(rows) == {"now", "next-day"}
    for key, printed in rows.items():
        stored = Assignment.objects.filter(experiment=experiment, variant__key=key).count()
        assert int(printed.replace(",", "")) == stored > 0
    # 50 % pilot traffic: about half of the 300 simulated customers are in.
    assert 100 < Assignment.objects.count() < 200

    login = re.search(r"login: (\S+) / (\S+)", output)
    assert login, output
    user = authenticate(username=login.group(1), password=login.group(2))
    assert user is not None and user.is_staff


def test_demo_can_run_again_without_duplicating(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    _demo(100)
    first = Assignment.objects.count()
    _demo(100)
    assert Experiment.objects.filter(key="demo-pp-email-timing").count() == 1
    assert Assignment.objects.count() == first  # same customers, same sticky rows
