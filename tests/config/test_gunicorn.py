"""gunicorn's settings for the web process (`config.gunicorn`): sync workers, two per core.

The process itself, started with these settings and sent concurrent offers, is tested in
`tests/recommendations/test_web_process.py`.
"""

import importlib
import os


def _settings_module(monkeypatch, *, env: dict[str, str], cores: int):
    for name in ("WEB_CONCURRENCY", "PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    import config.gunicorn

    return importlib.reload(config.gunicorn)


def test_sync_workers_two_per_core_by_default(monkeypatch):
    module = _settings_module(monkeypatch, env={}, cores=3)
    assert module.worker_class == "sync"
    assert module.workers == 6
    assert module.bind == "0.0.0.0:8000"


def test_web_concurrency_and_port_override_the_defaults(monkeypatch):
    module = _settings_module(monkeypatch, env={"WEB_CONCURRENCY": "5", "PORT": "9001"}, cores=2)
    assert module.workers == 5
    assert module.bind == "0.0.0.0:9001"
