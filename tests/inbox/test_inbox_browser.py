"""The inbox in a real browser (Chromium, Selenium, the system chromedriver) against a running
stack: uvicorn on 127.0.0.1, the dev server, Postgres and a worker.

Set BOOMERANG_SCREENSHOTS=docs to refresh the README's screenshots from these runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium.webdriver import Chrome
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from boomerang.api import create_app
from boomerang.inbox.views import dom_id
from boomerang.models.decisions import DecisionInput
from boomerang.settings import Settings
from boomerang.store.queries import Pool
from tests.api import Api, api_fixture  # noqa: F401  (the `api` fixture)
from tests.helpers import BRIEF, wait_for_checkpoint
from tests.inbox.browser import UNNAMED_CONTROLS_JS, chromium
from tests.inbox.pages import decision_form
from tests.inbox.served import serve

FIRST = "approve_founders_brief"
SECOND = "approve_customer_profile"
T = TypeVar("T")


@pytest.fixture(scope="module")
def driver() -> Iterator[Chrome]:
    with chromium() as browser:
        yield browser


@pytest.fixture
async def site(api: Api, store_pool: Pool) -> AsyncIterator[str]:
    async with serve(create_app(client=api.client, pool=store_pool, settings=Settings())) as url:
        yield url


async def _in_browser(fn: Callable[..., T], *args: Any) -> T:
    # Selenium blocks; the app under test runs on this event loop and must keep serving.
    return await asyncio.to_thread(fn, *args)


async def _kickoff(api: Api, project: str) -> str:
    response = await api.http.post(
        "/kickoff", headers=api.auth(api.approver), json={"project_id": project, "brief": BRIEF}
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    await wait_for_checkpoint(api.client, run_id, FIRST)
    return run_id


def _sign_in(driver: Chrome, site: str, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{site}/inbox")
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "token"))
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "who-name"))


def _item(driver: Chrome, run_id: str, checkpoint: str, *, timeout_s: float = 30) -> WebElement:
    """The item once the inbox lists it (reloading: the page is server-rendered)."""

    def shown(d: Chrome) -> WebElement | None:
        found = d.find_elements(By.ID, dom_id(run_id, checkpoint))
        if not found:
            # After a decision the page is the form's answer (a POST): reload the inbox itself.
            d.get(d.current_url.split("#")[0].replace("/inbox/decide", "/inbox"))
        return found[0] if found else None

    item: WebElement | None = WebDriverWait(driver, timeout_s, poll_frequency=0.3).until(shown)
    assert item is not None
    return item


def _unnamed_controls(driver: Chrome) -> list[str]:
    unnamed: list[str] = driver.execute_script(UNNAMED_CONTROLS_JS)
    return unnamed


def _keyboard_decide(driver: Chrome, run_id: str, checkpoint: str, option: str) -> str:
    """Tab from the top of the page to the option's button, press Enter: the shown result."""
    target = _item(driver, run_id, checkpoint).find_element(By.CSS_SELECTOR, f"button[value={option}]")
    driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    for _ in range(60):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.switch_to.active_element == target:
            break
    else:
        raise AssertionError(f"Tab never reached the {option} button of {checkpoint}")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    result: WebElement = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "decision-result"))
    return result.get_attribute("data-status") or ""


def _submit_twice(driver: Chrome, run_id: str, checkpoint: str) -> list[tuple[int, str]]:
    """The same rendered form sent twice at once (a double click, a resubmit): both statuses."""
    form = _item(driver, run_id, checkpoint).find_element(By.CSS_SELECTOR, "form.decision")
    statuses: list[tuple[int, str]] = driver.execute_async_script(
        """
        const [form, done] = arguments;
        const body = () => {
          const f = new FormData(form);
          f.set('decision', 'approve');
          return new URLSearchParams(f);
        };
        Promise.all([1, 2].map(() => fetch(form.action, {method: 'POST', body: body()})
          .then(async r => [r.status, (await r.text()).match(/data-status="([a-z]+)"/)[1]])))
          .then(done);
        """,
        form,
    )
    return statuses


def _screenshot(driver: Chrome, name: str) -> None:
    folder = os.environ.get("BOOMERANG_SCREENSHOTS")
    if folder:
        driver.set_window_size(1200, max(800, driver.execute_script("return document.body.scrollHeight")))
        driver.save_screenshot(str(Path(folder) / name))
        driver.set_window_size(1200, 1000)


async def test_sign_in_decide_by_keyboard_and_see_the_next_checkpoint(
    api: Api, site: str, driver: Chrome
) -> None:
    run_id = await _kickoff(api, "clinic-billing")
    await _in_browser(_sign_in, driver, site, api.approver)
    await _in_browser(_item, driver, run_id, FIRST)
    assert await _in_browser(_unnamed_controls, driver) == []
    await _in_browser(_screenshot, driver, "inbox.png")

    # Keyboard only: Tab to "Approve", Enter; then the run moves on to its next checkpoint.
    assert await _in_browser(_keyboard_decide, driver, run_id, FIRST, "approve") == "applied"
    [decision] = (await wait_for_checkpoint(api.client, run_id, SECOND)).decisions
    assert (decision.checkpoint, decision.approver) == (FIRST, api.approver_name)
    item = await _in_browser(_item, driver, run_id, SECOND)
    assert [b.get_attribute("value") for b in item.find_elements(By.TAG_NAME, "button")] == [
        "approve", "reject", "iterate",
    ]  # fmt: skip

    # The same form sent twice: one decision, the other answer a duplicate.
    answers = await _in_browser(_submit_twice, driver, run_id, SECOND)
    assert sorted(s for _, s in answers) == ["applied", "duplicate"], answers
    status = await api.client.status(run_id)
    assert [d.checkpoint for d in status.decisions] == [FIRST, SECOND]

    await _in_browser(driver.get, f"{site}/inbox/runs/{run_id}")
    assert await _in_browser(_unnamed_controls, driver) == []
    rows = driver.find_elements(By.CSS_SELECTOR, "#checkpoints tr.decided td.approver")
    assert [r.text for r in rows] == [api.approver_name, api.approver_name]
    assert "checkpoint_decided" in driver.find_element(By.ID, "charter").text
    await _in_browser(_screenshot, driver, "run.png")


async def test_a_stale_form_shows_the_runs_reason_in_place(api: Api, site: str, driver: Chrome) -> None:
    run_id = await _kickoff(api, "clinic-stale")
    await _in_browser(_sign_in, driver, site, api.approver)
    item = await _in_browser(_item, driver, run_id, FIRST)
    # Someone else decides through another channel while this page is open.
    await api.client.decide(run_id, DecisionInput(checkpoint=FIRST, approver="bob", decision_id="cli-1"))
    await _in_browser(item.find_element(By.CSS_SELECTOR, "button[value=reject]").click)
    shown = await _in_browser(
        lambda: WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "decision-result"))
    )
    assert shown.get_attribute("data-status") == "refused" and "not pending" in shown.text
    status = await api.client.status(run_id)
    assert [(d.approver, d.decision.value) for d in status.decisions] == [("bob", "approve")]


async def test_a_viewer_cannot_decide_and_another_tenant_sees_nothing(
    api: Api, site: str, driver: Chrome
) -> None:
    run_id = await _kickoff(api, "clinic-view")
    await _in_browser(_sign_in, driver, site, api.viewer)
    item = await _in_browser(_item, driver, run_id, FIRST)
    assert item.find_elements(By.CSS_SELECTOR, "form.decision") == []
    assert driver.find_element(By.ID, "viewer-note").is_displayed()
    assert decision_form(driver.page_source, run_id, FIRST) is None

    await _in_browser(_sign_in, driver, site, api.stranger)
    assert run_id not in driver.page_source
    await _in_browser(driver.get, f"{site}/inbox/runs/{run_id}")
    assert f"no run '{run_id}'" in driver.page_source
    assert driver.find_elements(By.ID, "run-status") == []
    assert (await api.client.status(run_id)).decisions == ()
