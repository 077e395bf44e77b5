"""The shipped Prometheus config: promtool accepts it, and a real Prometheus scrapes the app."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from live_helpers import stop, wait_for

from benchmarks.service import free_port

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "cnn-tagger.json"
CLASSIFY_ROUTE = "/v1/models/{model}/classify"
REQUESTS = 7

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (Debian package prometheus)"
)
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="prometheus not installed (Debian package prometheus)",
)


@needs_promtool
def test_promtool_accepts_the_shipped_config_and_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def scrape_config(tmp_path: Path, target: str) -> Path:
    """The shipped config with the target replaced and 1 s scrapes (as the test runs it)."""
    config = yaml.safe_load(CONFIG.read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(CONFIG.parent / name) for name in config.get("rule_files", [])]
    (job,) = config["scrape_configs"]
    job["static_configs"][0]["targets"] = [target]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def query(prometheus: str, expr: str) -> list[dict]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]["result"]


def scalar(prometheus: str, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def wait_until_equal(prometheus: str, expr: str, expected: float, timeout_s: float = 30) -> float:
    """Poll until Prometheus has scraped a value equal to `expected`; returns the last value."""
    deadline = time.monotonic() + timeout_s
    value = scalar(prometheus, expr)
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        value = scalar(prometheus, expr)
    return value


@pytest.mark.slow
@needs_prometheus
def test_prometheus_scrapes_the_request_and_batch_counts(
    start_service, png_image: bytes, tmp_path: Path
) -> None:
    service = start_service()
    port = free_port()
    config = scrape_config(tmp_path, f"127.0.0.1:{service.port}")
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        prometheus = f"http://127.0.0.1:{port}"
        wait_for(f"{prometheus}/-/ready", process, log, timeout_s=60)
        assert wait_until_equal(prometheus, 'up{job="cnn-tagger"}', 1.0) == 1.0

        for _ in range(REQUESTS):  # one at a time: every request is its own batch of one
            response = httpx.post(
                service.classify_url, files={"file": ("a.png", png_image, "image/png")}
            )
            assert response.status_code == 200, response.text

        ok = f'sum(tagger_requests_total{{route="{CLASSIFY_ROUTE}", status="200"}})'
        assert wait_until_equal(prometheus, ok, REQUESTS) == REQUESTS
        assert scalar(prometheus, "sum(tagger_batch_size_count)") == REQUESTS
        assert scalar(prometheus, "sum(tagger_batch_size_sum)") == REQUESTS
        served = query(prometheus, "tagger_model_info == 1")
        assert [r["metric"]["model"] for r in served] == [service.model]
        assert served[0]["metric"]["service"] == "cnn-tagger"

        # Every dashboard query is valid PromQL for this Prometheus (Grafana variables filled).
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$__rate_interval", "15s")
                query(prometheus, expr.replace("$instance", ".*").replace("$model", ".*")
                      .replace("$route", ".*"))  # fmt: skip
    finally:
        stop(process)
