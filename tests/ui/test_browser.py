"""The web UI in a real browser (Debian's Chromium driven by Playwright): the demo pipelines
run, ``streamcoord serve`` serves the UI, and a person finds the ML run, reads the timeline with
the retried load attempts, asks why a stage has not run, triggers a run with params, retries its
failed stage and sees it succeed without reloading; a viewer sees no action buttons.

Screenshots of each page land in ``tests/artifacts/ui/`` (gitignored)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path

import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from streamcoord.auth import hash_token, new_token
from streamcoord.demo import run_demo
from streamcoord.events.topics import PACKAGED_TOPICS_FILE
from streamcoord.kafka.settings import KafkaSettings
from streamcoord.runtime import Coordinator, CoordinatorSettings
from streamcoord.runtime.specs import load_catalog
from streamcoord.worker import Worker, WorkerSettings
from streamcoord.worker.shell import ShellExecutor
from tests.api.serve_process import serve_process
from tests.integration.test_demo import EXAMPLES, forget_demo_failures

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(420),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no {CHROMIUM}: apt-get install chromium"),
]  # fmt: skip

DAY = date(2026, 2, 3)
ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "ui"
JAEGER = "http://127.0.0.1:16686"  # only linked to, never reached
#: A manual pipeline beside the examples: `publish` fails until its marker file exists (retry it
#: from the UI), `notify` waits for it (explain it).
REPORTS = """\
pipelines:
  - name: reports
    description: Publish a report on request; fails until the marker exists.
    run_key: "event.data.run_key"
    triggers:
      - kind: manual
    stages:
      - name: publish
        retries:
          max_attempts: 1
        executor:
          config:
            command: "test -e {marker}"
        params:
          marker: "MARKER"
      - name: notify
        needs: [publish]
        executor:
          config:
            command: "echo notified"
"""


@contextlib.asynccontextmanager
async def coordinator_and_worker(kafka: KafkaSettings, specs: Path) -> AsyncIterator[None]:
    """What the demo runs (its coordinator stops with it), for the actions after it."""
    stop = asyncio.Event()
    coordinator = Coordinator(
        load_catalog([specs], topics_file=PACKAGED_TOPICS_FILE),
        CoordinatorSettings(topic_prefix=kafka.topic_prefix, poll_timeout_ms=50),
        kafka.client_kwargs(),
    )
    worker = Worker(WorkerSettings(group_id="streamcoord-worker-shell", poll_timeout_ms=50), kafka)
    worker.registry.add(None, ShellExecutor())
    tasks = [asyncio.create_task(coordinator.run(stop)), asyncio.create_task(worker.run(stop))]
    try:
        await asyncio.wait_for(coordinator.ready.wait(), 60)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)


async def test_the_ui_shows_and_operates_the_demo(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    forget_demo_failures(DAY)
    marker = tmp_path / "report-ready"
    specs = tmp_path / "specs"
    shutil.copytree(EXAMPLES, specs)
    (specs / "reports.yaml").write_text(REPORTS.replace("MARKER", str(marker)))
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name('ui')}.")
    await run_demo(kafka, load_catalog([specs], topics_file=PACKAGED_TOPICS_FILE),
                   timeout_s=240, today=DAY)  # fmt: skip

    tokens = {role: new_token() for role in ("viewer", "admin")}
    env = {"STREAMCOORD_JAEGER_URL": JAEGER, "STREAMCOORD_AUTH_TOKENS": orjson.dumps([
        {"name": f"ui-{role}", "role": role, "sha256": hash_token(token)}
        for role, token in tokens.items()
    ]).decode()}  # fmt: skip
    database = f"sqlite:///{tmp_path / 'readmodel.db'}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with (
        coordinator_and_worker(kafka, specs),
        serve_process(kafka_bootstrap, kafka.topic_prefix, specs, database, env=env) as served,
        async_playwright() as playwright,
    ):  # fmt: skip
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        try:
            await as_admin(browser, served.url, tokens["admin"], marker)
            await as_viewer(browser, served.url, tokens["viewer"])
        finally:
            await browser.close()


async def signed_in(
    browser: Browser, url: str, token: str, shot: str | None = None, *, dark: bool = False
) -> Page:
    page = await browser.new_page(
        viewport={"width": 1280, "height": 900}, color_scheme="dark" if dark else "light"
    )
    page.set_default_timeout(60_000)
    expect.set_options(timeout=60_000)
    await page.goto(url + "/")
    await page.get_by_label("API token").fill(token)
    if shot:
        await page.screenshot(path=ARTIFACTS / shot)
    await page.get_by_role("button", name="Sign in").click()
    return page


async def go(page: Page, hash_: str) -> None:
    """Navigate inside the app (the hash changes; the document stays)."""
    await page.evaluate("hash => { location.hash = hash }", hash_)


def run_hash(run_id: str) -> str:
    return "#/runs/" + run_id.replace("/", "%2F")


async def confirm(page: Page, button: str) -> None:
    dialog = page.locator("dialog#confirm")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name=button).click()


async def as_admin(browser: Browser, url: str, token: str, marker: Path) -> None:
    page = await signed_in(browser, url, token, shot="token.png")
    day = DAY.isoformat()

    # Pipelines: every example, with its triggers and last day's runs
    overview = page.locator("table.pipelines")
    await expect(overview.get_by_role("link", name="ml", exact=True)).to_be_visible()
    await expect(overview.locator("tr", has_text="ingest")).to_contain_text("event, manual")
    await expect(overview.locator("tr", has_text="ingest")).to_contain_text("succeeded 48")
    await page.screenshot(path=ARTIFACTS / "pipelines.png", full_page=True)

    # The ML pipeline, by keyboard: its graph (daily.quality_check upstream) and the grid
    await overview.get_by_role("link", name="ml", exact=True).focus()
    await page.keyboard.press("Enter")
    graph = page.locator("svg.graph")
    await expect(graph.locator('[data-stage="ml.deploy"]')).to_contain_text("succeeded")
    await expect(graph.locator('[data-stage="daily.quality_check"]')).to_be_visible()
    await page.screenshot(path=ARTIFACTS / "pipeline.png", full_page=True)
    await page.locator("table.grid thead a", has_text=day).click()
    await expect(page.locator("h1")).to_contain_text(f"ml/{day}")
    timeline = page.locator(".gantt")
    for stage in ("train", "evaluate", "deploy"):
        await expect(timeline.locator(f'.g-row[data-stage="{stage}"]')).to_have_count(1)
    trace = await page.locator("dd code").first.text_content()
    jaeger = page.get_by_role("link", name="trace in Jaeger")
    await expect(jaeger).to_have_attribute("href", f"{JAEGER}/trace/{trace}")
    await page.screenshot(path=ARTIFACTS / "run-ml.png", full_page=True)

    # An ingest run: load failed once (its log tail shown), the retry succeeded
    await go(page, run_hash(f"ingest/clicks/{day}T05"))
    loads = page.locator('.gantt .g-row[data-stage="load"]')
    await expect(loads).to_have_count(2)
    await expect(loads.nth(0).locator(".glyph")).to_have_attribute("aria-label", "failed")
    await expect(loads.nth(1).locator(".glyph")).to_have_attribute("aria-label", "succeeded")
    await expect(page.locator("table.stages")).to_contain_text("object store timed out")
    await page.locator(".gantt").screenshot(path=ARTIFACTS / "timeline-retried-load.png")
    await page.screenshot(path=ARTIFACTS / "run-ingest.png", full_page=True)

    # Trigger a run with params; its first stage fails
    await go(page, "#/pipelines/reports")
    await page.get_by_text("Trigger a run").click()
    await page.get_by_label("run key").fill("r1")
    await page.get_by_label("params (JSON)").fill('{"audience": "finance"}')
    await page.get_by_role("button", name="Trigger", exact=True).click()
    await expect(page.locator("dialog#confirm")).to_be_visible()
    await page.keyboard.press("Escape")  # changed my mind: nothing is sent
    await expect(page.locator("dialog#confirm")).to_be_hidden()
    await expect(page.locator("#toast")).to_be_empty()
    await page.get_by_role("button", name="Trigger", exact=True).click()
    await confirm(page, "Trigger")
    await expect(page.locator("#toast")).to_contain_text("accepted")
    await go(page, run_hash("reports/r1"))
    await expect(page.locator("h1 .status")).to_contain_text("failed")
    await expect(page.locator("pre.json").first).to_contain_text("finance")

    # Explain the stage that has not run
    notify = page.locator("table.stages tr", has_text="notify")
    await notify.get_by_role("link", name="Explain").click()
    explain = page.locator("#explain")
    await expect(explain.locator("ul.needs")).to_contain_text("publish")
    await expect(explain.locator("ul.needs")).to_contain_text("not met")
    await page.screenshot(path=ARTIFACTS / "explain.png", full_page=True)

    # Retry it once it can succeed, and watch the run succeed on the same page
    await page.evaluate("window.__sameDocument = true")
    await asyncio.to_thread(marker.touch)
    await page.get_by_role("button", name="Retry publish").click()
    await confirm(page, "Retry")
    await expect(page.locator("h1 .status")).to_contain_text("succeeded")
    await expect(page.locator('.gantt .g-row[data-stage="publish"]')).to_have_count(2)
    assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    await page.screenshot(path=ARTIFACTS / "run-retried-from-ui.png", full_page=True)
    await go(page, run_hash("reports/r1"))
    await expect(page.locator("h1 .status")).to_contain_text("succeeded")
    await page.screenshot(path=ARTIFACTS / "run-top.png")  # what docs/ui-run.png shows

    await go(page, "#/dead-letters")
    await expect(page.locator("h1")).to_have_text("Dead letters")
    await page.screenshot(path=ARTIFACTS / "dead-letters.png", full_page=True)
    await page.close()


async def as_viewer(browser: Browser, url: str, token: str) -> None:
    page = await signed_in(browser, url, token, dark=True)
    await expect(page.locator("#who")).to_contain_text("viewer")
    await expect(page.locator("table.pipelines")).to_contain_text("reports")
    await go(page, run_hash("reports/r1"))
    await expect(page.locator("h1 .status")).to_contain_text("succeeded")
    await go(page, "#/pipelines/reports")
    await page.locator('svg.graph [data-stage="reports.notify"]').click()  # opens its explain
    await expect(page.locator("#explain h2")).to_have_text("Explain notify")
    for where in ("#/", "#/pipelines/reports", run_hash("reports/r1")):
        await go(page, where)
        await expect(page.locator("main h1")).to_be_visible()
        await expect(page.locator("main button")).to_have_count(0)
        await expect(page.get_by_text("Trigger a run")).to_have_count(0)
    # the system's dark setting is followed
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 28)", background
    await page.screenshot(path=ARTIFACTS / "viewer-run-dark.png", full_page=True)
    await page.close()
