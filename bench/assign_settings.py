"""Settings for bench/assign.py only: production settings plus a bench urlconf (bare endpoint)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "assign_urls"
