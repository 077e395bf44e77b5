"""Prometheus metrics, all held by one `Metrics` object on one registry (isolated in tests).

With several worker processes (app.supervisor sets PROMETHEUS_MULTIPROC_DIR for them) every
value is written to a file per process and /metrics reports all processes together: counters
and histograms add up; each gauge's `multiprocess_mode` says how its values combine (`livesum`
for amounts in use now, `livemax` for 0/1 flags), over the live workers only.
"""

from __future__ import annotations

import os
import warnings

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """The service's collectors; pass one instance around instead of using module globals."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tagger_requests_total",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_duration = Histogram(
            "tagger_request_duration_seconds",
            "HTTP request latency.",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "tagger_requests_in_flight",
            "HTTP requests being handled now.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.decode_seconds = Histogram(
            "tagger_image_decode_seconds",
            "Time to decode and preprocess one image.",
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.decode_bytes_in_use = Gauge(
            "tagger_decode_bytes_in_use",
            "Estimated memory of the image decodes running now (at most TAGGER_MAX_DECODE_BYTES "
            "per worker).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.images_rejected = Counter(
            "tagger_images_rejected_total", "Uploads refused, by reason.", ["reason"], registry=r
        )
        # Requests refused because the service is full (admission bound or batch queue).
        self.rejected_overloaded = self.images_rejected.labels("overloaded")
        self.queue_depth = Gauge(
            "tagger_queue_depth",
            "Images waiting for a batch.",
            ["model"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.batch_size = Histogram(
            "tagger_batch_size",
            "Images per model call.",
            ["model"],
            buckets=_BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_wait = Histogram(
            "tagger_batch_wait_seconds",
            "Time an image waited in the queue before its batch ran.",
            ["model"],
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.inference_seconds = Histogram(
            "tagger_inference_seconds",
            "Model call time per batch.",
            ["model"],
            buckets=_FAST_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "tagger_predictions_total",
            "Top-1 predictions, by label.",
            ["model", "label"],
            registry=r,
        )
        self._prediction_children: dict[tuple[str, str], Counter] = {}
        self.model_info = Gauge(
            "tagger_model_info",
            "1 for the version being served, with the runtime it runs in "
            "(onnxruntime or tensorflow).",
            ["model", "version", "runtime"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.reload_failures = Counter(
            "tagger_model_reload_failures_total",
            "Model versions that failed to load or warm, and versions whose model.onnx did "
            "(served through TensorFlow instead).",
            ["model"],
            registry=r,
        )
        self.serving_fallback = Gauge(
            "tagger_model_fallback",
            "1 while the served version stands in for the one to serve, which failed to load.",
            ["model"],
            registry=r,
            multiprocess_mode="livemax",
        )

        self.pinned_loads_refused = Counter(
            "tagger_pinned_loads_refused_total",
            "Requests for a pinned version refused because loading it was over budget.",
            ["model"],
            registry=r,
        )

        self.buffered_body_bytes = Gauge(
            "tagger_buffered_body_bytes",
            "Classify request body bytes received and held now by requests not yet answered.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.workers_ready = Gauge(
            "tagger_workers_ready",
            "Server processes (TAGGER_WORKERS) that are up and have had every model ready.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.http_refusals = Counter(
            "tagger_http_refusals_total",
            "Connections the HTTP layer answered or closed itself, by reason "
            "(header_timeout, headers_too_large, body_timeout, invalid_http).",
            ["reason"],
            registry=r,
        )

    def count_prediction(self, model: str, label: str) -> None:
        """`tagger_predictions_total{model,label}` += 1, with the labelled child looked up once."""
        key = (model, label)
        child = self._prediction_children.get(key)
        if child is None:
            child = self._prediction_children[key] = self.predictions.labels(model, label)
        child.inc()

    def render(self) -> bytes:
        """The text exposition (of every worker, with several); reads only the collectors,
        never waits on the model."""
        directory = os.environ.get(MULTIPROCESS_DIR_ENV)
        if not directory:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, directory)
        return generate_latest(registry)


MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def remove_series(gauge: Gauge, *labels: str) -> None:
    """Drop one labelled series of a gauge. With several workers the files cannot forget a
    series, so it is set to 0 first: that 0 is what /metrics then reports for it."""
    gauge.labels(*labels).set(0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Removal of labels", UserWarning)
        gauge.remove(*labels)
