"""The serving core: model manager, batcher, runtime, decoding and their errors; no HTTP."""
