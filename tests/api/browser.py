"""Debian's headless Chromium driven by Selenium for the dashboard tests.

Nothing is downloaded at run time: chromium and chromedriver are the Debian packages
(`make setup` installs them as root), and Selenium is given chromedriver's path, so
selenium-manager is never asked to fetch one. Missing: the tests skip with one line, and
under CI (CI=true) they fail instead (as the emulator and ngspice tests do)."""

from __future__ import annotations

import os

import pytest

CHROMIUM = os.environ.get("TONEBRIDGE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TONEBRIDGE_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)


def need_chromium():
    missing = [
        p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))
    ]
    if missing:
        why = f"dashboard browser tests need {' and '.join(missing)} (make setup installs chromium, chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)


def start_chrome(profile_dir):
    """A fresh headless Chromium (its own --user-data-dir) under chromedriver."""
    need_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={profile_dir}")
    service = Service(executable_path=CHROMEDRIVER, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver
