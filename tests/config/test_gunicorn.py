"""gunicorn's settings for the web process (`config.gunicorn`): sync workers, two per core.

The process itself, started with these settings and sent concurrent offers, is tested in
`tests/recommendations/test_web_process.py`.
"""

import importlib
import os

import pytest
from gunicorn.config import KNOWN_SETTINGS

import config.gunicorn as settings_module


@pytest.fixture
def environ(monkeypatch):
    """``environ(**values)``: WEB_CONCURRENCY and PORT as given, unset otherwise."""

    def _set(**values: str) -> None:
        for name in ("WEB_CONCURRENCY", "PORT"):
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    yield _set
    monkeypatch.undo()
    importlib.reload(settings_module)  # as imported with the real environment


def test_the_deployed_layout_is_sync_workers():
    assert settings_module.worker_class == "sync"
    assert settings_module.workers >= 2


def test_two_workers_per_core_by_default(environ, monkeypatch):
    environ()
    monkeypatch.setattr(settings_module, "cores", lambda: 3)
    assert settings_module._workers() == 6


def test_web_concurrency_sets_the_workers(environ):
    environ(WEB_CONCURRENCY="5")
    assert settings_module._workers() == 5


@pytest.mark.parametrize("value", ["0", "-2", "four", "1.5", "²"])
def test_a_bad_web_concurrency_is_refused_by_name(environ, value):
    environ(WEB_CONCURRENCY=value)
    with pytest.raises(ValueError, match="WEB_CONCURRENCY must be a whole number from 1"):
        settings_module._workers()


def test_port_sets_the_bind_address_and_empty_values_mean_the_defaults(environ, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    environ(PORT="9001")
    assert importlib.reload(settings_module).bind == "0.0.0.0:9001"
    environ(PORT="", WEB_CONCURRENCY="")
    module = importlib.reload(settings_module)
    assert module.bind == "0.0.0.0:8000"
    assert module.workers == 2 * module.cores()


def test_a_containers_cpu_quota_lowers_the_core_count(monkeypatch, tmp_path):
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(settings_module, "CGROUP_CPU_MAX", cpu_max)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert settings_module.cores() == 64  # no cgroup file
    cpu_max.write_text("150000 100000\n")  # docker run --cpus 1.5
    assert settings_module.cores() == 2
    cpu_max.write_text("max 100000\n")  # no quota
    assert settings_module.cores() == 64


def test_every_setting_is_one_gunicorn_knows():
    # gunicorn ignores unknown names in a config module, so a misspelt setting would do nothing.
    ours = {
        name
        for name, value in vars(settings_module).items()
        if name.islower() and not name.startswith("_") and isinstance(value, str | int)
    }
    assert ours == {"bind", "worker_class", "workers", "timeout", "graceful_timeout", "accesslog"}
    assert ours <= {setting.name for setting in KNOWN_SETTINGS}
