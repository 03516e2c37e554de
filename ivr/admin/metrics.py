"""Prometheus metrics of the dialer, read from the ledger on each scrape (the same snapshot as `ivr status`).

Served by `ivr run` when metrics.port > 0 (`start_metrics_server(cfg)`), or alone by `ivr metrics --port P`.
Metrics (all prefixed `ivr_`):
  ivr_channels_in_use, ivr_channels_cap        gauges: calls holding a channel now, and the cap
  ivr_calls_per_second                         gauge: calls started per second over the last 10 s
  ivr_rate_limit                               gauge: calls per second the live dialers allow now
  ivr_queue_length{state}                      gauge: queue entries of the current campaign per state
  ivr_attempts_total{outcome}                  counter: calls of the current campaign per outcome
                                               (resets when a new campaign starts, as counters may)
  ivr_esl_reconnects_total                     counter: FreeSWITCH reconnects reported by the dialers
  ivr_esl_connected                            gauge: 1 when a live dialer is connected to FreeSWITCH
  ivr_errors                                   gauge: errors known now (see `ivr status`)
  ivr_up                                       gauge: 1 when the ledger could be read for this scrape
  ivr_dialer_up{node}                          gauge per dialer node: 1 alive, 0 dead or fenced (never a dead
                                               node as running: heartbeat older than dialing.node_timeout_seconds)
  ivr_dialer_heartbeat_age_seconds{node}       gauge per dialer node: seconds since its last heartbeat
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ivr.admin.status import snapshot
from ivr.config import Config
from ivr.errors import IvrError
from ivr.ledger.models import database

log = logging.getLogger("ivr.admin.metrics")


class SnapshotCollector:
    """A custom collector: every scrape reads one fresh snapshot."""

    def __init__(self, cfg: Config, now: Callable[[], datetime] | None = None) -> None:
        self.cfg = cfg
        self.now = now  # the clock of "the last 10 s" (tests pin it; None = the wall clock)

    def describe(self) -> list[Metric]:
        return []  # no query at registration time

    def collect(self) -> Iterator[Metric]:
        db = database.obj
        opened = db is not None and db.is_closed()
        try:
            if opened:
                db.connect()
            snap = snapshot(self.cfg, self.now() if self.now else None)
        except Exception as exc:  # a scrape must answer even when the database is locked or gone
            log.warning("event=metrics_scrape_failed error=%s", exc)
            yield GaugeMetricFamily("ivr_up", "1 when the ledger could be read for this scrape", value=0)
            return
        finally:
            if opened:
                db.close()
        yield GaugeMetricFamily("ivr_up", "1 when the ledger could be read for this scrape", value=1)
        yield GaugeMetricFamily("ivr_channels_in_use", "calls holding a channel now", value=snap.channels_in_use)
        yield GaugeMetricFamily("ivr_channels_cap", "most concurrent calls allowed", value=snap.channels_cap)
        yield GaugeMetricFamily("ivr_calls_per_second", "calls started per second over the last 10 s",
                                value=snap.calls_per_second)
        yield GaugeMetricFamily("ivr_rate_limit", "calls per second the live dialers allow now",
                                value=snap.rate_limit)
        queue = GaugeMetricFamily("ivr_queue_length", "queue entries of the current campaign", labels=["state"])
        for state, n in sorted(snap.queue.items()):
            queue.add_metric([state], n)
        yield queue
        attempts = CounterMetricFamily("ivr_attempts", "calls of the current campaign by outcome",
                                       labels=["outcome"])
        for outcome, n in sorted(snap.outcomes.items()):
            attempts.add_metric([outcome], n)
        yield attempts
        yield CounterMetricFamily("ivr_esl_reconnects", "FreeSWITCH reconnects reported by the dialers",
                                  value=snap.esl_reconnects)
        yield GaugeMetricFamily("ivr_esl_connected", "1 when a live dialer is connected to FreeSWITCH",
                                value=1 if snap.esl_state == "connected" else 0)
        yield GaugeMetricFamily("ivr_errors", "errors known now (see ivr status)", value=snap.error_count)
        up = GaugeMetricFamily("ivr_dialer_up", "1 when the dialer node is alive (fresh heartbeat, not fenced)",
                               labels=["node"])
        age = GaugeMetricFamily("ivr_dialer_heartbeat_age_seconds", "seconds since the node's last heartbeat",
                                labels=["node"])
        for n in snap.nodes:
            up.add_metric([n.name], 1 if n.alive else 0)
            age.add_metric([n.name], round(n.heartbeat_age_s, 1))
        yield up
        yield age


@dataclass
class MetricsServer:
    port: int
    bind: str
    _server: Any
    _thread: Any

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_metrics_server(cfg: Config, port: int | None = None, bind: str | None = None,
                         now: Callable[[], datetime] | None = None) -> MetricsServer:
    """Serve /metrics in a background thread on cfg.metrics.bind:cfg.metrics.port (or the given ones; 0 picks
    a free port, see `.port`). Raises IvrError with the address when the port cannot be bound."""
    port = cfg.metrics.port if port is None else port
    bind = bind or cfg.metrics.bind
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(cfg, now))
    try:
        server, thread = start_http_server(port, addr=bind, registry=registry)
    except OSError as exc:
        raise IvrError(f"metrics: cannot listen on {bind}:{port}: {exc.strerror or exc}; "
                       f"change metrics.port or stop what uses it") from None
    real_port = server.server_port
    log.info("event=metrics_listening bind=%s port=%d", bind, real_port)
    return MetricsServer(real_port, bind, server, thread)
