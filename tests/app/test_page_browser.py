"""The page at `/` in a real headless Chromium, against a real server holding two versions
(2 is served, `stable` points at 1) that requires an API key."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from app_helpers import Evaluated, Server, encode, make_settings, run_server
from browser import (
    by_id,
    choose,
    clear_viewport,
    console,
    css,
    needs_chromium,
    problems,
    set_viewport,
    start_chromium,
    wait,
)

from model_store import ModelStore

pytestmark = [pytest.mark.slow, needs_chromium]

KEY = "page-test-key"
# Version 2 is version 1's model with another accuracy in its metadata.json, so that a card
# showing the other version's numbers fails.
SECOND_ACCURACY = 0.4321
TOP_K = 3
CONTROLS = ["model", "version", "alias", "top-k", "api-key", "use-key", "files"]


@pytest.fixture(scope="module")
def page_store(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("page-store") / "models"
    shutil.copytree(trained_store.root, root)
    store = ModelStore(root)
    metadata = store.metadata("fashion", 1)
    test = metadata.metrics.test.model_copy(update={"accuracy": SECOND_ACCURACY})
    metrics = metadata.metrics.model_copy(update={"test": test})
    with store.staging("fashion") as staged:
        shutil.copytree(store.version_dir("fashion", 1), staged, dirs_exist_ok=True)
        (staged / "metadata.json").unlink()
        store.publish(
            "fashion", staged, metadata.model_copy(update={"files": {}, "metrics": metrics})
        )
    store.promote("fashion", 1, "stable")
    return root


@pytest.fixture(scope="module")
def page_server(page_store: Path) -> Iterator[Server]:
    with run_server(make_settings(page_store, api_key=KEY)) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def t10k_png(
    evaluated: Evaluated, trained_store: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """The test image the version is surest about among those it gets right, and its label."""
    predicted = evaluated.probabilities.argmax(axis=1)
    right = np.flatnonzero(predicted == evaluated.labels)
    best = int(right[np.argmax(evaluated.probabilities[right].max(axis=1))])
    path = tmp_path_factory.mktemp("page-images") / "t10k.png"
    path.write_bytes(encode(evaluated.images[best]))
    return path, trained_store.metadata.labels[int(evaluated.labels[best])]


def open_page(browser: Any, server: Server, key: str | None) -> None:
    """Load the page; with `key`, enter it and wait for the models and the served card."""
    browser.get(server.url + "/")
    wait(
        browser,
        lambda b: by_id(b, "status").text and "Loading" not in by_id(b, "status").text,
        "status",
    )
    if key is None:
        return
    assert_only_refused(console(browser))
    by_id(browser, "api-key").send_keys(key)
    by_id(browser, "use-key").click()
    wait(browser, lambda b: "model(s)" in by_id(b, "status").text, "models listed")
    wait_for_card(browser, "fashion/2")


def assert_only_refused(entries: list[dict[str, Any]]) -> None:
    """Before its key is entered the page's one call, /v1/models, is refused (401): Chromium
    logs that failed load; nothing else may be in the console (script errors, CSP
    violations, missing files)."""
    seen = problems(entries)
    assert seen and all("/v1/models - " in m and "status of 401" in m for m in seen), seen


def wait_for_card(browser: Any, loaded: str) -> None:
    wait(
        browser, lambda b: by_id(b, "card").get_attribute("data-loaded") == loaded, f"card {loaded}"
    )


def upload(browser: Any, path: Path) -> Any:
    """Choose `path` in the file picker; the result entry once answered."""
    before = len(css(browser, "#results > li"))
    by_id(browser, "files").send_keys(str(path))
    wait(browser, lambda b: len(css(b, "#results > li")) > before, "a result entry")
    newest = css(browser, "#results > li")[0]
    wait(browser, lambda b: newest.get_attribute("aria-busy") is None, "an answer")
    return newest


def card_figures_loaded(browser: Any) -> list[int]:
    """naturalWidth of each plot of the card once all are in."""
    script = (
        "return [...document.querySelectorAll('#card img.plot')]"
        ".map(i => i.complete ? i.naturalWidth : -1)"
    )
    wait(
        browser,
        lambda b: len(b.execute_script(script)) == 3 and -1 not in b.execute_script(script),
        "3 plots",
    )
    return browser.execute_script(script)


def test_without_the_key_the_page_shows_the_401_and_with_it_works(
    browser: Any, page_server: Server, t10k_png: tuple[Path, str], tmp_path: Path
) -> None:
    console(browser)
    open_page(browser, page_server, key=None)
    refused = httpx.get(page_server.url + "/v1/models").json()["error"]["message"]
    status = by_id(browser, "status")
    assert status.text.startswith(refused) and status.get_attribute("role") == "alert"
    browser.save_screenshot(str(tmp_path / "no-key.png"))
    assert_only_refused(console(browser))

    by_id(browser, "api-key").send_keys(KEY)
    by_id(browser, "use-key").click()
    wait(browser, lambda b: "model(s)" in by_id(b, "status").text, "models listed with the key")
    path, label = t10k_png
    assert upload(browser, path).get_attribute("data-top") == label
    assert problems(console(browser)) == []
    browser.save_screenshot(str(tmp_path / "with-key.png"))


def test_a_test_image_gets_its_label_and_the_chosen_version_answers(
    browser: Any,
    page_server: Server,
    t10k_png: tuple[Path, str],
    trained_store: Any,
    tmp_path: Path,
) -> None:
    open_page(browser, page_server, KEY)
    path, label = t10k_png
    served = upload(browser, path)
    assert served.get_attribute("data-top") == label
    assert served.get_attribute("data-version") == "2"
    assert (
        len(served.find_elements("css selector", ".bars > li"))
        == int(by_id(browser, "top-k").get_attribute("value"))
        == TOP_K
    )
    assert "fashion v2" in served.text and " ms" in served.text

    choose(browser, "version", "1")
    wait_for_card(browser, "fashion/1")
    pinned = upload(browser, path)
    assert (pinned.get_attribute("data-version"), pinned.get_attribute("data-top")) == ("1", label)
    accuracy = trained_store.metadata.metrics.test.accuracy
    assert by_id(browser, "card-accuracy").text == f"{accuracy * 100:.1f}%"
    assert all(width > 0 for width in card_figures_loaded(browser))
    assert len(css(browser, "#card table.per-class tbody tr")) == len(trained_store.metadata.labels)

    choose(browser, "version", "2")
    wait_for_card(browser, "fashion/2")
    assert by_id(browser, "card-accuracy").text == f"{SECOND_ACCURACY * 100:.1f}%"
    assert upload(browser, path).get_attribute("data-version") == "2"
    choose(browser, "alias", "stable")
    wait_for_card(browser, "fashion/1")
    assert by_id(browser, "version").get_attribute("value") == ""  # one or the other
    assert upload(browser, path).get_attribute("data-version") == "1"
    assert problems(console(browser)) == []
    browser.save_screenshot(str(tmp_path / "versions.png"))


def test_a_sample_is_classified_by_keyboard_and_every_control_is_reachable(
    browser: Any, page_server: Server
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    open_page(browser, page_server, KEY)
    samples = css(browser, "#sample-list button")
    assert len(samples) == 10
    widths = browser.execute_script(
        "return [...document.querySelectorAll('#sample-list img')].map(i => i.naturalWidth)"
    )
    assert widths == [28] * 10
    for control in CONTROLS:
        labels = browser.execute_script(
            f"return document.getElementById('{control}').labels.length"
        )
        assert control == "use-key" or labels == 1, control
    css(browser, "h1")[0].click()  # Tab now starts from the top of the page
    reached = []
    for _ in range(len(CONTROLS) + 1):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        active = browser.switch_to.active_element
        reached.append(active.get_attribute("id") or active.get_attribute("class"))
    assert reached[: len(CONTROLS)] == CONTROLS and reached[len(CONTROLS)] == "sample"
    ActionChains(browser).send_keys(Keys.ENTER).perform()  # the first sample: a T-shirt/top
    wait(browser, lambda b: css(b, "#results > li[data-version]"), "the sample's answer")
    result = css(browser, "#results > li")[0]
    assert "T-shirt/top" in result.find_element("css selector", ".name").text
    assert result.get_attribute("data-version") == "2"
    assert problems(console(browser)) == []


def test_dropped_and_pasted_images_are_each_classified(
    browser: Any, page_server: Server, t10k_png: tuple[Path, str]
) -> None:
    """Two files dropped on the drop zone and one pasted: the page's own handlers, given the
    DataTransfer a real drag or paste carries (WebDriver cannot drag files from the desktop)."""
    open_page(browser, page_server, KEY)
    path, label = t10k_png
    browser.execute_async_script(DROP_AND_PASTE, base64.b64encode(path.read_bytes()).decode())
    wait(browser, lambda b: len(css(b, "#results > li[data-version]")) == 3, "three answers")
    names = sorted(e.text for e in css(browser, "#results .name"))
    assert names == ["dropped-0.png", "dropped-1.png", "pasted-0.png"]
    assert {e.get_attribute("data-top") for e in css(browser, "#results > li")} == {label}
    assert problems(console(browser)) == []


def test_a_bad_file_shows_the_apis_error(browser: Any, page_server: Server, tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"these are notes, not an image\n")
    answer = httpx.post(
        page_server.url + "/v1/models/fashion/classify",
        files={"file": ("notes.png", bad.read_bytes(), "image/png")},
        headers={"X-API-Key": KEY},
    )
    assert answer.status_code in (400, 415)
    open_page(browser, page_server, KEY)
    failed = upload(browser, bad)
    error = failed.find_element("css selector", ".error")
    assert error.text == answer.json()["error"]["message"]
    assert error.get_attribute("data-status") == str(answer.status_code)
    assert "failed" in failed.get_attribute("class")
    browser.save_screenshot(str(tmp_path / "bad-file.png"))
    console(browser)  # the refused upload is logged as a failed load


def test_at_360_px_wide_nothing_scrolls_sideways(
    browser: Any, page_server: Server, t10k_png: tuple[Path, str], tmp_path: Path
) -> None:
    set_viewport(browser, 360, 780)
    try:
        open_page(browser, page_server, KEY)
        upload(browser, t10k_png[0])
        card_figures_loaded(browser)
        widths = browser.execute_script(
            "const e = document.documentElement;"
            "return [e.scrollWidth, e.clientWidth, window.innerWidth]"
        )
        assert widths[1] == widths[2] == 360
        assert widths[0] <= widths[1], f"the page is {widths[0]} px wide at 360 px"
        browser.save_screenshot(str(tmp_path / "narrow.png"))
        assert problems(console(browser)) == []
    finally:
        clear_viewport(browser)


DROP_AND_PASTE = """
const [png, done] = arguments;
const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
const files = (prefix, n) => {
  const data = new DataTransfer();
  for (let i = 0; i < n; i++) {
    data.items.add(new File([bytes], `${prefix}-${i}.png`, {type: "image/png"}));
  }
  return data;
};
const drag = (type, data) => new DragEvent(type, {dataTransfer: data, bubbles: true});
const drop = document.getElementById("drop");
drop.dispatchEvent(drag("dragover", files("x", 0)));
drop.dispatchEvent(drag("drop", files("dropped", 2)));
document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: files("pasted", 1)}));
done();
"""
