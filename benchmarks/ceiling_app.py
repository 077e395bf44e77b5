"""The HTTP ceiling: a bare FastAPI endpoint at the service's classify path that parses the same
multipart upload and answers a constant, with no model, no decoding and no middleware.

`python -m uvicorn benchmarks.ceiling_app:app --workers N` (uvloop and httptools, as the
service runs) is what one and N processes of Python HTTP can do on this machine; every service
figure in the workers scenario is also given as a fraction of it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, UploadFile

# About the size of the service's answer for one image at top_k=5.
ANSWER: dict[str, Any] = {
    "model": "fashion",
    "version": 1,
    "predictions": [{"label": "Ankle boot", "confidence": 0.9} for _ in range(5)],
    "results": [{"predictions": [{"label": "Ankle boot", "confidence": 0.9} for _ in range(5)]}],
}

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.post("/v1/models/{model}/classify")
async def classify(model: str, file: UploadFile) -> dict[str, Any]:
    await file.read()
    return ANSWER
