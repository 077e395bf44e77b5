"""Open Inference Protocol v2 (KServe V2, Triton HTTP) with Triton's binary tensor data and
classification extensions."""
