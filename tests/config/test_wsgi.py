"""The WSGI entry point warms every view module and freezes the start-up heap out of the GC."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_a_web_worker_freezes_its_start_up_objects_out_of_the_garbage_collector():
    probe = (
        "import gc, sys, config.wsgi; "
        "print(gc.get_freeze_count(), 'experiments.apis.analysis' in sys.modules)"
    )
    env = {**os.environ, "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()

    frozen, views_imported = int(out[0]), out[1] == "True"
    assert views_imported  # the URLconf's views were imported before freezing
    assert frozen > 50_000  # Django, DRF and the scientific stack, never scanned again
