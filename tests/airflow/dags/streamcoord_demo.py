"""A DAG for the Airflow executor's tests: params say what it does; it updates an asset."""

from __future__ import annotations

import time

from airflow.sdk import DAG, Asset, task

with DAG(
    "streamcoord_demo",
    schedule=None,
    catchup=False,
    params={"n": 1, "fail": False, "sleep": 0},
):

    @task(outlets=[Asset("streamcoord://tests/orders")])
    def work(params: dict[str, object] | None = None) -> int:
        assert params is not None
        time.sleep(float(params["sleep"]))  # type: ignore[arg-type]
        if params["fail"]:
            raise RuntimeError("asked to fail")
        return int(params["n"]) * 2  # type: ignore[call-overload]

    work()
