"""TF Serving REST answers: `:predict` and `:classify` bodies and the error body as TF
Serving's REST documentation (g3doc/api_rest.md) and handler tests
(http_rest_api_handler_test.cc) show them, asserted field by field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.api.tfserving.requests import PredictFormat
from app.api.tfserving.responses import encode_classify, encode_predict, error_body


def test_predict_answers_of_the_handler_tests_one_unnamed_output() -> None:
    # http_rest_api_handler_test.cc: { "predictions": [[2.5, 3.0], [3.5, 4.0]] } for rows and
    # { "outputs": [3.5, 4.0] } for columns: one output tensor, so no output name, a list.
    scores = np.array([[2.5, 3.0], [3.5, 4.0]], dtype=np.float32)
    assert encode_predict(scores, PredictFormat.ROW) == {"predictions": [[2.5, 3.0], [3.5, 4.0]]}
    assert encode_predict(scores, PredictFormat.COLUMNAR) == {"outputs": [[2.5, 3.0], [3.5, 4.0]]}


def test_float32_scores_are_written_at_their_shortest_like_tf_servings_write_decimal() -> None:
    scores = np.array([[0.1, 0.2, 0.7]], dtype=np.float32)
    body = json.dumps(encode_predict(scores, PredictFormat.ROW))
    assert body == '{"predictions": [[0.1, 0.2, 0.7]]}'
    assert np.array_equal(np.array(json.loads(body)["predictions"], dtype=np.float32), scores)


def test_classify_answer_of_the_handler_tests_shape_results_not_result() -> None:
    # http_rest_api_handler_test.cc: { "results": [[["", 12]]] } (the g3doc's prose says
    # "result"; TF Serving's kClassifyRegressResponseKey and its tests say "results").
    assert encode_classify(np.array([[12.0]], dtype=np.float32), [""]) == {
        "results": [[["", 12.0]]]
    }


def test_classify_answers_every_class_in_label_order_per_example() -> None:
    scores = np.array([[0.1, 0.6, 0.3], [0.5, 0.25, 0.25]], dtype=np.float32)
    answer = encode_classify(scores, ["shirt", "shoe", "bag"])
    assert answer == {
        "results": [
            [["shirt", 0.1], ["shoe", 0.6], ["bag", 0.3]],
            [["shirt", 0.5], ["shoe", 0.25], ["bag", 0.25]],
        ]
    }
    with pytest.raises(ValueError):
        encode_classify(scores, ["shirt", "shoe"])


def test_error_body_of_the_docs_example() -> None:
    # api_rest.md: { "error": "Servable not found for request: Latest(half)" }
    message = "Servable not found for request: Latest(half)"
    assert error_body(message) == {"error": message}
