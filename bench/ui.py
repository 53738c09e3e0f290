"""The web UI over a large store: ``python -m bench.ui [--runs N] [--repeat N]``.

Fills (or reuses) the SQLite store of ``bench.readmodel`` with ``--runs`` finished runs, serves
``streamcoord serve``'s app over it on a loopback port (no Kafka: actions are not measured),
and opens each page in headless Chromium (``/usr/bin/chromium``, driven by Playwright): the
time from navigation to the first contentful paint, and to the page's data drawn (its table,
grid or timeline in the DOM: the app's ``streamcoord:drawn`` performance mark). Medians over
``--repeat`` fresh loads, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from playwright.async_api import async_playwright
from sqlalchemy import func, select

from bench.api import _NoCommands
from bench.readmodel import PIPELINES, fill
from streamcoord.api import ApiServices, LocalSpecs, create_app
from streamcoord.auth import AUDIT_LOGGER, Role, TokenRegistry, hash_token, new_token
from streamcoord.readmodel import _schema as t
from streamcoord.readmodel import open_store

CHROMIUM = "/usr/bin/chromium"
#: The store's pipelines (bench.readmodel fills two stages a run), as specs for the API.
SPEC = "pipelines:\n" + "".join(
    f"  - name: {name}\n    run_key: event.data.run_key\n    triggers: [{{kind: manual}}]\n"
    "    stages:\n      - name: extract\n      - name: load\n        needs: [extract]\n"
    for name in PIPELINES
)


async def measure(store: Any, spec_dir: Path, repeat: int) -> None:
    token = new_token()
    tokens = TokenRegistry([("bench", hash_token(token), Role.viewer)])

    async def explainer(run_id: str, stage: str) -> None:
        return None

    services = ApiServices(store=store, specs=LocalSpecs([spec_dir]),
                           commands=_NoCommands(),  # type: ignore[arg-type]
                           explainer=explainer, tokens=tokens)  # fmt: skip
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(create_app(services), log_level="warning",
                                           access_log=False))  # fmt: skip
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    with store.engine.connect() as conn:
        run_id = conn.execute(select(t.runs.c.run_id).limit(1)).scalar_one()
    pages = [
        ("pipelines (overview)", "#/", "table.pipelines"),
        ("a pipeline (graph, grid of 20 runs)", f"#/pipelines/{PIPELINES[3]}", "table.grid"),
        ("runs, 50 a page", "#/runs", "table.runs"),
        ("runs, filtered by status", "#/runs?status=failed", "table.runs"),
        ("a run (timeline, audit)", "#/runs/" + run_id.replace("/", "%2F"), ".gantt"),
    ]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = await browser.new_context()
        await context.add_init_script(f"sessionStorage.setItem('streamcoord.token', '{token}')")
        for label, route, drawn in pages:
            paints, ready = [], []
            for _ in range(repeat + 1):  # the first load warms caches; not counted
                page = await context.new_page()
                await page.goto(url + route)
                await page.wait_for_selector(drawn)
                # the app marks "streamcoord:drawn" once a page's data is in the DOM
                fcp, done = await page.evaluate("""() => [
                    performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
                    performance.getEntriesByName('streamcoord:drawn')[0]?.startTime ?? NaN]""")
                paints.append(fcp)
                ready.append(done)
                await page.close()
            print(f"  {label:38} first paint {statistics.median(paints[1:]):6.0f} ms"
                  f"   data drawn {statistics.median(ready[1:]):6.0f} ms")  # fmt: skip
        await browser.close()
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument(
        "--database", type=Path, default=Path(tempfile.gettempdir()) / "streamcoord-bench-readmodel"
    )
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    logging.getLogger(AUDIT_LOGGER).setLevel(logging.ERROR)
    args.database.mkdir(parents=True, exist_ok=True)
    path = args.database / f"runs-{args.runs}.db"
    store = open_store(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(t.runs)).scalar_one()
    if present != args.runs:
        store.close()
        path.unlink()
        store = open_store(f"sqlite:///{path}")
        fill(store, args.runs)
    with tempfile.TemporaryDirectory() as specs:
        (Path(specs) / "bench.yaml").write_text(SPEC)
        print(f"the web UI over {args.runs:,} finished runs (SQLite), headless Chromium, loopback:")
        asyncio.run(measure(store, Path(specs), args.repeat))
    store.close()


if __name__ == "__main__":
    main()
