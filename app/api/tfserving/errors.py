"""TF Serving's error body, `{"error": "<message>"}`, for every failure on its routes; the
status comes from `app.api.errors.serving_status` like every protocol's."""

from __future__ import annotations

from app.api.errors import ErrorStyle, message_body

STYLE = ErrorStyle("tfserving", message_body)
