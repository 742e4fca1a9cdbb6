"""Chromium from the OS packages, driven by Selenium through the system chromedriver.

Nothing is downloaded: the driver path is given (Selenium Manager never runs, and
SE_OFFLINE forbids it anyway), and Chromium's own background fetches are switched
off. The browser only ever talks to the app on 127.0.0.1.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1200,1000",
)  # fmt: skip

# Every control a person can reach (hidden inputs are not controls) and its accessible
# name, by the rules a screen reader uses for these elements: aria-labelledby,
# aria-label, a <label for>, a wrapping <label>, a button's own text.
UNNAMED_CONTROLS_JS = """
const named = (el) => {
  const by = el.getAttribute('aria-labelledby');
  if (by && by.split(/\\s+/).some(id => (document.getElementById(id)?.textContent || '').trim())) return true;
  if ((el.getAttribute('aria-label') || '').trim()) return true;
  const labels = [...document.querySelectorAll('label[for]')];
  if (el.id && labels.some(l => l.htmlFor === el.id && l.textContent.trim())) return true;
  if (el.closest('label') && el.closest('label').textContent.trim()) return true;
  if (el.tagName === 'BUTTON' && el.textContent.trim()) return true;
  return false;
};
return [...document.querySelectorAll('input:not([type=hidden]), button, select, textarea')]
  .filter(el => !named(el)).map(el => el.outerHTML);
"""


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:  # a failure that says what to do, not a driver's stack trace
        raise AssertionError(
            f"{', '.join(missing)} not found: install the OS's Chromium first "
            "(Debian/Ubuntu: apt-get install chromium chromium-driver); see the README"
        )
    os.environ["SE_OFFLINE"] = "true"
    with tempfile.TemporaryDirectory(prefix="boomerang-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver
        finally:
            driver.quit()
