"""AdmissionMiddleware's route match: what the router would match, remembered per path."""

from __future__ import annotations

from typing import Any

from starlette.routing import Match

from app.api.admission import Admission, AdmissionMiddleware
from app.api.oip import routes as oip
from app.api.routes import classify
from app.api.tfserving import routes as tfserving

ROUTES = [*classify.router.routes, *oip.router.routes, *tfserving.router.routes]


def _middleware() -> AdmissionMiddleware:
    admission = Admission(10, 1 << 20, 1, None, lambda _: None)  # type: ignore[arg-type]
    return AdmissionMiddleware(None, admission, ROUTES)  # type: ignore[arg-type]


def _scope(path: str, method: str = "POST") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": ""}


def _router_match(scope: dict[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    for route in ROUTES:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child["path_params"]
    return None


def test_a_remembered_match_is_the_routers_match_for_every_path_and_method() -> None:
    middleware = _middleware()
    paths = [
        "/v1/models/fashion/classify",
        "/v1/models/fashion/versions/3/classify",
        "/v1/models/fashion/labels/stable/classify",
        "/v2/models/fashion/infer",
        "/v2/models/fashion/versions/2/infer",
        "/v1/models/fashion:predict",
        "/v1/models/other/classify",
        "/v1/models/fashion/nothing/classify",
    ]
    for _ in range(2):  # the second time from memory
        for path in paths:
            for method in ("POST", "GET"):
                scope = _scope(path, method)
                assert middleware._bounded_route(scope) == _router_match(scope), (method, path)


def test_the_parameters_handed_out_are_a_fresh_copy_each_time() -> None:
    middleware = _middleware()
    scope = _scope("/v1/models/fashion/classify")
    first = middleware._bounded_route(scope)
    assert first is not None
    first[1]["model"] = "changed"
    second = middleware._bounded_route(scope)
    assert second is not None and second[1] == {"model": "fashion"}


def test_made_up_paths_do_not_grow_the_memory_without_bound() -> None:
    middleware = _middleware()
    for index in range(3000):
        assert middleware._bounded_route(_scope(f"/v1/models/m{index}/classify")) is not None
    assert 0 < len(middleware._matches) <= 1024
