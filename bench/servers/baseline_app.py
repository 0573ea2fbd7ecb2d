"""The seed-style baselines with the heartbeat interval the runner asks for.

Run:  BENCH_BASELINE=queue_server|sse_starlette_server BENCH_HEARTBEAT=5 \\
      PYTHONPATH=bench/baselines uvicorn baseline_app:app --app-dir bench/servers

The baselines hard-code a 15 s heartbeat; every server in one benchmark run uses the
same interval so idle memory includes the heartbeat machinery of each. Nothing else
changes: the module imports ``queue_server`` or ``sse_starlette_server`` as it is.
"""

from __future__ import annotations

import importlib
import os

import baseline_hub

# Read at import by sse_starlette_server and on every tick by Hub._heartbeat_loop.
baseline_hub.HEARTBEAT_INTERVAL_S = float(
    os.environ.get("BENCH_HEARTBEAT", baseline_hub.HEARTBEAT_INTERVAL_S)
)

app = importlib.import_module(os.environ.get("BENCH_BASELINE", "queue_server")).app
