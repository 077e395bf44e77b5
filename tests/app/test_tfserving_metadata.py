"""TF Serving's model metadata of a published version, asserted field by field against the
shape of TF Serving's own test data."""

from __future__ import annotations

from app.api.tfserving.metadata import model_metadata


def test_model_metadata_as_tf_serving_prints_this_models_saved_model() -> None:
    # Shape of saved_model_half_plus_two_2_versions_metadata.json (TF Serving's test data),
    # with this SavedModel's own signatures.
    answer = model_metadata("fashion", 3, (28, 28, 1), 10)
    assert answer["model_spec"] == {"name": "fashion", "signature_name": "", "version": "3"}
    signatures = answer["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "__saved_model_init_op"}
    serving = signatures["serving_default"]
    assert serving["method_name"] == "tensorflow/serving/predict"
    assert serving["defaults"] == {}
    assert serving["inputs"] == {
        "pixels": {
            "dtype": "DT_UINT8",
            "tensor_shape": {
                "dim": [
                    {"size": "-1", "name": ""},
                    {"size": "28", "name": ""},
                    {"size": "28", "name": ""},
                    {"size": "1", "name": ""},
                ],
                "unknown_rank": False,
            },
            "name": "serving_default_pixels:0",
        }
    }
    assert serving["outputs"] == {
        "probabilities": {
            "dtype": "DT_FLOAT",
            "tensor_shape": {
                "dim": [{"size": "-1", "name": ""}, {"size": "10", "name": ""}],
                "unknown_rank": False,
            },
            "name": "StatefulPartitionedCall:0",
        }
    }
    assert signatures["__saved_model_init_op"] == {
        "inputs": {},
        "outputs": {
            "__saved_model_init_op": {
                "dtype": "DT_INVALID",
                "tensor_shape": {"dim": [], "unknown_rank": True},
                "name": "NoOp",
            }
        },
        "method_name": "",
        "defaults": {},
    }
