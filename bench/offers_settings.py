"""Settings for bench/offers.py only: production settings plus a bench urlconf (bare endpoint)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "offers_urls"
