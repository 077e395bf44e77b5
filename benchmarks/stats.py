"""The harness's arithmetic: percentiles, rates, ratios, metric deltas. Pure functions."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

# A /metrics snapshot: (sample name, sorted label pairs) -> value.
MetricKey = tuple[str, tuple[tuple[str, str], ...]]
Snapshot = Mapping[MetricKey, float]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linearly interpolated between closest ranks; NaN if empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, not {q}")
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def latency_summary(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds."""
    if not latencies_s:
        return {key: math.nan for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")}
    return {
        "p50_ms": 1000.0 * percentile(latencies_s, 50),
        "p95_ms": 1000.0 * percentile(latencies_s, 95),
        "p99_ms": 1000.0 * percentile(latencies_s, 99),
        "max_ms": 1000.0 * max(latencies_s),
        "mean_ms": 1000.0 * sum(latencies_s) / len(latencies_s),
    }


def rate(count: float, seconds: float) -> float:
    """Events per second; NaN for an empty interval."""
    return count / seconds if seconds > 0 else math.nan


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is zero or not a number."""
    if denominator == 0 or math.isnan(denominator) or math.isnan(numerator):
        return math.nan
    return numerator / denominator


def metric_total(snapshot: Snapshot, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(
        value
        for (sample, sample_labels), value in snapshot.items()
        if sample == name and wanted <= set(sample_labels)
    )


def metric_delta(before: Snapshot, after: Snapshot, name: str, **labels: str) -> float:
    """How much a counter (or histogram _sum/_count) grew between two snapshots."""
    return metric_total(after, name, **labels) - metric_total(before, name, **labels)


def mean_batch_size(before: Snapshot, after: Snapshot) -> float:
    """Images per model call during an interval: delta of tagger_batch_size _sum over _count."""
    images = metric_delta(before, after, "tagger_batch_size_sum")
    batches = metric_delta(before, after, "tagger_batch_size_count")
    return ratio(images, batches)


def interpolate(points: Mapping[int, float], x: float) -> float:
    """Value at x from (x -> y) points, linear in log2(x) between neighbours, clamped at the ends.

    Used to compare the service at its mean batch size with the raw model at the same size.
    """
    if not points:
        return math.nan
    xs = sorted(points)
    if x <= xs[0]:
        return points[xs[0]]
    if x >= xs[-1]:
        return points[xs[-1]]
    for low, high in itertools.pairwise(xs):
        if low <= x <= high:
            weight = (math.log2(x) - math.log2(low)) / (math.log2(high) - math.log2(low))
            return points[low] + (points[high] - points[low]) * weight
    return math.nan  # unreachable: x lies between the ends


def parse_metrics(text: str) -> dict[MetricKey, float]:
    """A Prometheus text exposition -> snapshot (every sample, `_created` ones dropped)."""
    from prometheus_client.parser import text_string_to_metric_families

    snapshot: dict[MetricKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            snapshot[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return snapshot


def status_counts(statuses: Iterable[int]) -> dict[str, int]:
    """Count responses by status code (0 = no answer: connection error or client timeout)."""
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return dict(sorted(counts.items()))
