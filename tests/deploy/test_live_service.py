"""Dashboard and alert queries, and the image's health checks, against a running service."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "cnn-tagger.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
# What the dashboard must show (metric names from the service's contract).
REQUIRED = {
    "tagger_requests_total",
    "tagger_request_duration_seconds_bucket",
    "tagger_batch_size_bucket",
    "tagger_batch_size_sum",
    "tagger_batch_size_count",
    "tagger_queue_depth",
    "tagger_predictions_total",
    "tagger_images_rejected_total",
    "tagger_model_info",
    "tagger_model_reload_failures_total",
    "tagger_inference_seconds_bucket",
}
# Series Prometheus itself adds to every target, allowed in alerts only.
PROMETHEUS_SERIES = {"up"}
_NOT_METRICS = {
    "sum", "min", "max", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "label_values", "inf", "nan",
}  # fmt: skip
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (or a Grafana label_values() query) selects."""
    if match := re.fullmatch(r"\s*label_values\(\s*([A-Za-z_:][\w:]*)\s*,\s*\w+\s*\)\s*", expr):
        return {match.group(1)}
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\w+", " ", expr)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", expr):
        calls = expr[match.end() :].lstrip().startswith("(")
        if not calls and match.group(0).lower() not in _NOT_METRICS:
            names.add(match.group(0))
    return names


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["query"]["query"] for v in dashboard["templating"]["list"]]
    return queries


def alert_queries() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def exported_names(text: str) -> set[str]:
    """Every series name a /metrics page offers, including labelled families still empty."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


@pytest.fixture(scope="module")
def service(start_service, png_image: bytes):
    """One service that has classified an image and rejected a non-image."""
    live = start_service()
    ok = httpx.post(live.classify_url, files={"file": ("a.png", png_image, "image/png")})
    assert ok.status_code == 200, ok.text
    bad = httpx.post(live.classify_url, files={"file": ("a.txt", b"not an image", "text/plain")})
    assert bad.status_code == 415, bad.text
    return live


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(tagger_x_bucket{route=~"$route",'
        ' status!~"2.."}[$__rate_interval]))) / on (model) group_left max(tagger_y) > 0.5'
    )
    assert metric_names(expr) == {"tagger_x_bucket", "tagger_y"}
    assert metric_names("label_values(tagger_model_info, model)") == {"tagger_model_info"}


def test_dashboard_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        assert panel["datasource"]["uid"] == uid
        assert all(t["datasource"]["uid"] == uid for t in panel["targets"])


def test_dashboard_queries_only_metrics_the_service_exports(service) -> None:
    exported = exported_names(httpx.get(f"{service.url}/metrics").text)
    used = set().union(*(metric_names(q) for q in dashboard_queries()))
    assert used >= REQUIRED, f"dashboard lacks {sorted(REQUIRED - used)}"
    assert used <= exported, f"dashboard queries unknown metrics {sorted(used - exported)}"


def test_alerts_query_only_metrics_the_service_exports(service) -> None:
    exported = exported_names(httpx.get(f"{service.url}/metrics").text) | PROMETHEUS_SERIES
    used = set().union(*(metric_names(q) for q in alert_queries()))
    assert used <= exported, f"alerts query unknown metrics {sorted(used - exported)}"


def test_the_images_healthcheck_passes_against_the_service(service) -> None:
    """Run the Dockerfile's HEALTHCHECK command as Docker would (shell form, env port)."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", "")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("HEALTHCHECK")]
    command = line.split(" CMD ", 1)[1].strip()
    env = {"PATH": "/usr/bin:/bin", "TAGGER_PORT": str(service.port)}
    command = command.replace("python ", f"{sys.executable} ", 1)
    assert subprocess.run(["sh", "-c", command], env=env, timeout=30).returncode == 0
    env["TAGGER_PORT"] = "1"  # nothing listens there: the check must fail
    assert subprocess.run(["sh", "-c", command], env=env, timeout=30).returncode != 0


def test_the_compose_readiness_check_passes_against_the_service(service) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    test = compose["services"]["api"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    argv = [sys.executable, *test[2:]]
    argv[-1] = argv[-1].replace("127.0.0.1:8000", f"127.0.0.1:{service.port}")
    assert subprocess.run(argv, timeout=30).returncode == 0
