"""The sync agent's own metric: runs by outcome, counted where the agent runs (the node's
/metrics, edge_node.web.metrics, exports it)."""

from __future__ import annotations

import logging

from prometheus_client import Counter

log = logging.getLogger(__name__)

SYNC_OUTCOMES = Counter("dmed_node_sync_runs_total", "Sync runs by outcome: ok, or the stage "
                        "that failed", ("outcome",), registry=None)


def count_sync(report: dict) -> None:
    """Called by the sync agent with each run's report (outcome: ok, or failed_<stage>)."""
    outcome = "ok" if report.get("ok") else f"failed_{report.get('stage') or 'unknown'}"
    SYNC_OUTCOMES.labels(outcome).inc()
