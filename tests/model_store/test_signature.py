"""The serving-signature names are wire names: a rename must fail here, not in a client."""

from __future__ import annotations

import json

from store_helpers import make_metadata

from model_store import ModelMetadata
from model_store.signature import INPUT_NAME, OUTPUT_NAME, SIGNATURE_NAME


def test_names_are_the_documented_literals() -> None:
    # Published stores, TF Serving and Open Inference Protocol clients all use these spellings.
    assert (SIGNATURE_NAME, INPUT_NAME, OUTPUT_NAME) == (
        "serving_default",
        "pixels",
        "probabilities",
    )


def test_written_metadata_names_the_contract_as_before() -> None:
    written = json.loads(make_metadata().to_json())
    assert written["signature"] == "serving_default" and written["output"] == "probabilities"


def test_metadata_written_without_the_names_reads_as_the_contract() -> None:
    written = json.loads(make_metadata().to_json())
    del written["signature"], written["output"]
    metadata = ModelMetadata.model_validate(written)
    assert (metadata.signature, metadata.output) == (SIGNATURE_NAME, OUTPUT_NAME)
