"""The same image through each protocol, same server, same run: this service's upload API,
Open Inference Protocol v2 (binary UINT8 pixels, and binary BYTES holding the PNG) and TF
Serving REST (`:predict` with a b64 PNG).

Each request carries one image; `hey` drives 64 clients (no Python client in the way). The
protocols take turns for several rounds, so machine noise falls on all of them alike; each
row reports the median over its rounds of images/s, p50/p99 and the server's CPU
milliseconds per answered request (from /proc/<pid>/stat).
"""

from __future__ import annotations

import base64
import json
import logging
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from benchmarks.load import parse_hey
from benchmarks.service import Service, confined_to
from benchmarks.tables import fmt, table

logger = logging.getLogger(__name__)

BOUNDARY = "tagger-bench-boundary"


@dataclass(frozen=True)
class Request:
    """One protocol's request for hey: path, body, content type and extra headers."""

    name: str
    path: str
    body: bytes
    content_type: str
    headers: tuple[str, ...] = ()


def multipart_body(image: bytes) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def oip_body(data: np.ndarray, datatype: str) -> tuple[bytes, int]:
    """A binary-tensor OIP v2 request built by tritonclient itself, and its JSON length."""
    import tritonclient.http as triton

    tensor = triton.InferInput("pixels", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=True)
    output = triton.InferRequestedOutput("probabilities", binary_data=True)
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor], [output])
    return body, json_size if json_size is not None else len(body)


def upload_request(model: str, image: bytes) -> Request:
    """This service's own API: one multipart PNG upload."""
    return Request(
        "upload API (multipart PNG)",
        f"/v1/models/{model}/classify",
        multipart_body(image),
        f"multipart/form-data; boundary={BOUNDARY}",
    )


def requests(model: str, image: bytes, pixels: np.ndarray) -> list[Request]:
    """The four requests: one image each, the same image."""
    uint8_body, uint8_json = oip_body(pixels[None], "UINT8")
    png_body, png_json = oip_body(np.array([image], dtype=np.object_), "BYTES")
    predict = json.dumps({"instances": [{"b64": base64.b64encode(image).decode()}]}).encode()
    return [
        upload_request(model, image),
        Request(
            "OIP v2 (binary UINT8 pixels)",
            f"/v2/models/{model}/infer",
            uint8_body,
            "application/octet-stream",
            (f"Inference-Header-Content-Length: {uint8_json}",),
        ),
        Request(
            "OIP v2 (binary BYTES PNG)",
            f"/v2/models/{model}/infer",
            png_body,
            "application/octet-stream",
            (f"Inference-Header-Content-Length: {png_json}",),
        ),
        Request(
            "TF Serving :predict (b64 PNG)",
            f"/v1/models/{model}:predict",
            predict,
            "application/json",
        ),
    ]


class Measured(Protocol):
    """A server `hey_with_cpu` can drive and charge CPU time to."""

    @property
    def base_url(self) -> str: ...

    def cpu_seconds(self) -> float: ...


def hey_with_cpu(
    service: Measured,
    request: Request,
    clients: int,
    seconds: float,
    scratch: Path,
    cpus: frozenset[int] | None = None,
) -> dict[str, float]:
    """One closed-loop hey run (on `cpus` when given): its report, and the server's CPU ms
    per answered request."""
    body = scratch / f"protocol-{abs(hash(request.name))}.bin"
    body.write_bytes(request.body)
    command = ["hey", "-z", f"{seconds:g}s", "-c", str(clients), "-m", "POST",
               "-T", request.content_type, "-D", str(body)]  # fmt: skip
    for header in request.headers:
        command += ["-H", header]
    command.append(service.base_url + request.path)
    cpu_before = service.cpu_seconds()
    output = subprocess.run(
        command, capture_output=True, text=True, check=True, preexec_fn=confined_to(cpus)
    ).stdout
    result = parse_hey(output)
    answered = result.get("ok", 0.0) + result.get("errors", 0.0)
    result["server_cpu_ms_per_request"] = (
        1000.0 * (service.cpu_seconds() - cpu_before) / answered if answered else float("nan")
    )
    return result


def compare(
    service: Service,
    image: bytes,
    pixels: np.ndarray,
    scratch: Path,
    *,
    clients: int = 64,
    seconds: float = 8.0,
    rounds: int = 3,
) -> list[dict[str, object]]:
    """One row per protocol: medians over `rounds` interleaved runs of `seconds` each."""
    plan = requests(service.model, image, pixels)
    runs: dict[str, list[dict[str, float]]] = {request.name: [] for request in plan}
    for request in plan:  # warm-up: first connections, first batches of each size
        hey_with_cpu(service, request, clients, 1.0, scratch)
    for round_index in range(rounds):
        for request in plan:
            result = hey_with_cpu(service, request, clients, seconds, scratch)
            logger.info("protocols round %d %s: %s", round_index + 1, request.name, result)
            runs[request.name].append(result)
    rows: list[dict[str, object]] = []
    for request in plan:
        results = runs[request.name]
        row: dict[str, object] = {"protocol": request.name, "path": request.path}
        for key in ("requests_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_request"):
            row[key] = statistics.median(result.get(key, float("nan")) for result in results)
        row["errors"] = sum(result.get("errors", 0.0) for result in results)
        row["body_bytes"] = len(request.body)
        rows.append(row)
    return rows


_HEADERS = [
    "protocol",
    "images/s",
    "p50 ms",
    "p99 ms",
    "server CPU ms/request",
    "body bytes",
    "non-200",
]


def lines(rows: list[dict[str, object]]) -> list[str]:
    """The report's section: one row per protocol."""
    if not rows:
        return []
    table_rows = [
        [
            str(row["protocol"]),
            fmt(row["requests_per_s"]),
            fmt(row["p50_ms"], 1),
            fmt(row["p99_ms"], 1),
            fmt(row["server_cpu_ms_per_request"], 2),
            fmt(row["body_bytes"]),
            fmt(row["errors"]),
        ]
        for row in rows
    ]
    title = "## One image per request, by protocol (hey, 64 clients, interleaved rounds, medians)"
    return [title, "", *table(_HEADERS, table_rows)]
