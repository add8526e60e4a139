"""`lathe_drift_score{model=…}` on /metrics: the latest embedding drift score this API process
computed per model (core.drift.report.LATEST). Labelled by model id, so a scrape shows the
ids of models whose drift was reported; only opted-in organizations' models appear."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily


class DriftCollector:
    def collect(self) -> Iterator[GaugeMetricFamily]:
        from core.drift.report import LATEST

        gauge = GaugeMetricFamily(
            "lathe_drift_score",
            "Latest embedding drift score (largest KS statistic, 0..1) per model, from "
            "GET /v1/models/{id}/drift.",
            labels=["model"],
        )
        for model, value in sorted(LATEST.items()):
            gauge.add_metric([model], value)
        yield gauge
