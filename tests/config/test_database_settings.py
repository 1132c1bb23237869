"""config.settings: how DATABASE_URL and DATABASE_PREPARE_THRESHOLD shape the connection."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SHOW_OPTIONS = (
    "import json, config.settings as s; "
    "print(json.dumps(s.DATABASES['default'].get('OPTIONS', {})))"
)


def _options(**env: str | None) -> tuple[int, str]:
    """(exit code, the OPTIONS as JSON or the error) of settings loaded with `env` (None: unset)."""
    environment = {**os.environ, "DEBUG": "1", "SECRET_KEY": "", **env}
    environment = {name: value for name, value in environment.items() if value is not None}
    run = subprocess.run(
        [sys.executable, "-c", SHOW_OPTIONS],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return run.returncode, run.stdout if run.returncode == 0 else run.stderr


POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/offerlab"


@pytest.mark.parametrize(
    "value, expected",
    [(None, 5), ("0", 0), ("12", 12), ("off", None), ("OFF", None), ("", None)],
)
def test_prepared_statements_follow_database_prepare_threshold(value, expected):
    code, out = _options(DATABASE_URL=POSTGRES_URL, DATABASE_PREPARE_THRESHOLD=value)
    assert code == 0, out
    options = json.loads(out)
    assert options.get("prepare_threshold") == expected
    assert options["server_side_binding"] is True


@pytest.mark.parametrize("value", ["five", "-1", "2.5"])
def test_a_bad_database_prepare_threshold_names_the_variable(value):
    code, out = _options(DATABASE_URL=POSTGRES_URL, DATABASE_PREPARE_THRESHOLD=value)
    assert code != 0
    assert "DATABASE_PREPARE_THRESHOLD must be a whole number or 'off'" in out


def test_sqlite_has_no_prepared_statement_option():
    code, out = _options(DATABASE_URL="sqlite:///:memory:")
    assert code == 0, out
    assert "prepare_threshold" not in json.loads(out)
