"""The serving-signature contract every published SavedModel keeps, named once.

A version's SavedModel has one signature, `serving_default`, taking uint8 `pixels`
`[None, H, W, C]` (H, W, C from the version's `InputSpec`, pixels already decoded and fitted by
`model_store.preprocessing`) and returning float32 `probabilities` `[None, K]`, one row per
image over the version's K labels, calibrated: softmax(logits / T). Normalisation, the
temperature T and (when trained with it) averaging over the horizontal mirror all live inside
the graph, so any server that calls the signature serves what was evaluated. These names are the
wire names TF Serving and Open Inference Protocol clients see; renaming one breaks every store
already published and every client written against it.

A version published with an ONNX export also holds `model.onnx`: the same signature converted
(same input and output names, dtypes and shapes), proven equal to it at publish.
"""

from __future__ import annotations

from typing import Final

SIGNATURE_NAME: Final = "serving_default"
INPUT_NAME: Final = "pixels"
OUTPUT_NAME: Final = "probabilities"
ONNX_FILE: Final = "model.onnx"
