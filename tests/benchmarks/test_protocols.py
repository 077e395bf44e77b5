"""The protocol comparison's requests: one image each, in each protocol's own wire format."""

from __future__ import annotations

import base64
import json

import numpy as np

from benchmarks import protocols


def test_each_protocol_carries_the_same_single_image() -> None:
    image = b"\x89PNG fake bytes"
    pixels = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28, 1)
    by_name = {request.name: request for request in protocols.requests("fashion", image, pixels)}
    assert len(by_name) == 4

    upload = by_name["upload API (multipart PNG)"]
    assert image in upload.body and upload.path == "/v1/models/fashion/classify"

    uint8 = by_name["OIP v2 (binary UINT8 pixels)"]
    json_length = int(uint8.headers[0].split(": ")[1])
    header = json.loads(uint8.body[:json_length])
    assert header["inputs"][0]["datatype"] == "UINT8"
    assert header["inputs"][0]["shape"] == [1, 28, 28, 1]
    assert uint8.body[json_length:] == pixels.tobytes()

    png = by_name["OIP v2 (binary BYTES PNG)"]
    json_length = int(png.headers[0].split(": ")[1])
    blob = png.body[json_length:]
    assert int.from_bytes(blob[:4], "little") == len(image) and blob[4:] == image

    predict = json.loads(by_name["TF Serving :predict (b64 PNG)"].body)
    assert base64.b64decode(predict["instances"][0]["b64"]) == image


def test_the_report_has_one_row_per_protocol() -> None:
    row = {"protocol": "p", "requests_per_s": 1234.5, "p50_ms": 40.0, "p99_ms": 80.0,
           "server_cpu_ms_per_request": 0.8, "body_bytes": 900, "errors": 0.0}  # fmt: skip
    lines = protocols.lines([row, {**row, "protocol": "q"}])
    assert lines[0].startswith("## One image per request")
    assert sum(line.startswith("| p |") or line.startswith("| q |") for line in lines) == 2
    assert protocols.lines([]) == []
