"""The program the dbt executor runs: dbt-core as a library, results as JSON lines on stdout.

``PYTHON dbt_child.py DBT_ARGS...`` calls ``dbtRunner(callbacks=[...]).invoke(DBT_ARGS)`` in the
Python environment that has dbt-core and its adapter (the worker's own, or a separate one when
dbt's pins conflict with the worker's). It imports nothing but the standard library and dbt, so
it runs from its file in any such environment. dbt's own console output goes to stderr; stdout
carries one JSON object per line:

* ``{"kind": "started", "unique_id", "name"}`` when dbt starts a node;
* ``{"kind": "node", "unique_id", "name", "resource_type", "status", "message",
  "execution_time", "index", "total"}`` when a node finishes (``total``: nodes selected, or
  null before dbt said);
* last, ``{"kind": "result", "success", "error", "results": [...], "listed": [...]}``:
  ``results`` as the node lines, for commands that run nodes; ``listed`` for ``ls``; ``error``
  the exception that stopped dbt itself (parse, profile, selection), else null.

Exit code 0 when dbt succeeded, 1 when nodes failed, 2 when dbt could not run.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def _write(out: Any, record: dict[str, Any]) -> None:
    out.write(json.dumps(record, default=str) + "\n")
    out.flush()


def _node_record(data: Any, index: int, total: int | None) -> dict[str, Any]:
    info = data.node_info
    result = data.run_result
    return {
        "kind": "node",
        "unique_id": info.unique_id,
        "name": info.node_name,
        "resource_type": info.resource_type,
        "status": result.status or info.node_status,
        "message": result.message,
        "execution_time": round(float(result.execution_time), 3),
        "index": index,
        "total": total,
    }


def _result_record(result: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "node",
        "unique_id": result.node.unique_id,
        "name": result.node.name,
        "resource_type": str(result.node.resource_type),
        "status": str(result.status),
        "message": result.message,
        "execution_time": round(float(result.execution_time or 0.0), 3),
    }
    rows = (result.adapter_response or {}).get("rows_affected")
    if isinstance(rows, int | float):
        entry["rows_affected"] = int(rows)
    return entry


def main(argv: list[str]) -> int:
    # Run as a file, this directory heads sys.path; its modules must not shadow dbt's imports.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    # The protocol keeps the real stdout; everything dbt prints goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # No usage statistics leave the machine.
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    try:
        from dbt.cli.main import dbtRunner  # noqa: PLC0415  # only in dbt's environment
    except ImportError as error:
        _write(
            out,
            {
                "kind": "result",
                "success": False,
                "results": [],
                "listed": [],
                "error": f"dbt-core is not installed for {sys.executable}: {error}",
            },
        )
        return 2
    done = 0
    total: int | None = None

    def on_event(event: Any) -> None:
        nonlocal done, total
        name = event.info.name
        if name == "LogStartLine" and total is None:
            total = int(event.data.total)
        elif name == "NodeStart":
            info = event.data.node_info
            _write(out, {"kind": "started", "unique_id": info.unique_id, "name": info.node_name})
        elif name == "NodeFinished":
            done += 1
            _write(out, _node_record(event.data, done, total))

    outcome = dbtRunner(callbacks=[on_event]).invoke(argv)
    result = outcome.result
    record: dict[str, Any] = {
        "kind": "result",
        "success": bool(outcome.success),
        "error": None if outcome.exception is None else str(outcome.exception),
        "results": [_result_record(r) for r in getattr(result, "results", None) or []],
        "listed": [str(item) for item in result] if isinstance(result, list) else [],
    }
    _write(out, record)
    if outcome.exception is not None:
        return 2
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
