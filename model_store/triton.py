"""Each model folder as a Triton model for the ONNX Runtime backend: `config.pbtxt`, `labels.txt`.

    <root>/<name>/config.pbtxt   backend, input/output tensors, batching, which versions to load
    <root>/<name>/labels.txt     one label per line, line i = output index i (classification)

Triton treats every sub-directory of the repository root as a model and, inside a model folder,
reads `config.pbtxt`, the label files it names and the version directories; it skips files
(aliases.json, alias_history.json, .lock, *.owner) and sub-directories whose names do not parse
as an integer (.staging-*, .trash-*, with a warning in its log). It parses with `std::stoll`,
which reads a leading integer and ignores the rest: a folder named `3-old` would be version 3,
so nothing in a model folder may start with a digit unless it is a version.

The config is one per model, not per version, so the versions it names share one input shape and
one label list. It names, as a `specific` version policy, the newest version that has model.onnx
and every aliased version that has model.onnx and the same labels and input: a request without a
version gets the newest, as the service serves by default, and aliased versions stay reachable
by number (Triton knows no aliases). Versions without model.onnx (published before ONNX export)
are never named: the ONNX Runtime backend cannot load them, and by default Triton stops at
start-up when any version fails to load. The store rewrites both files under the model's lock
whenever a version is published or removed or an alias moves.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from model_store.errors import ModelStoreError
from model_store.fsutil import fsync_dir, write_bytes_atomic
from model_store.schema import ModelMetadata
from model_store.signature import INPUT_NAME, ONNX_FILE, OUTPUT_NAME
from model_store.verify import describe_error, read_metadata

CONFIG_FILE: Final = "config.pbtxt"
LABELS_FILE: Final = "labels.txt"
BACKEND: Final = "onnxruntime"
# The service's default TAGGER_MAX_BATCH_SIZE: Triton forms batches up to the size the service does.
MAX_BATCH_SIZE: Final = 32
# About one batch-1 call of model.onnx on a CPU core (0.09 ms): a lone request waits at most as
# long again as its own inference, while under load Triton has time to gather a batch.
MAX_QUEUE_DELAY_US: Final = 100
_HEADER = (
    "# Written by model_store whenever a version is published or removed or an alias moves;\n"
    "# edits are lost. Rewrite it with: python -m model_store triton-config {name}\n"
)
_TRITON_TYPES: Final = {"uint8": "TYPE_UINT8"}


@dataclass(frozen=True)
class TritonModel:
    """What a model folder's config.pbtxt serves, and why the other versions are left out."""

    name: str
    versions: tuple[int, ...]  # the specific version policy, ascending; the last is the default
    metadata: ModelMetadata  # of the default version: input, labels
    not_served: dict[int, str] = field(default_factory=dict)  # version -> reason

    def describe(self) -> str:
        served = ", ".join(map(str, self.versions))
        line = f"{self.name}: Triton serves version(s) {served} (default {self.versions[-1]})"
        if self.not_served:
            reasons = "; ".join(f"{v} {why}" for v, why in sorted(self.not_served.items()))
            line += f"; not served: {reasons}"
        return line


def _readable(version_dir: Path, name: str, version: int) -> ModelMetadata | str:
    """The version's metadata, or why it cannot be served."""
    if not (version_dir / ONNX_FILE).is_file():
        return f"(no {ONNX_FILE})"
    try:
        metadata = read_metadata(version_dir)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        return f"(metadata.json unreadable: {describe_error(exc)})"
    if (metadata.name, metadata.version) != (name, version):
        return f"(metadata.json describes {metadata.name} version {metadata.version})"
    return metadata


def plan(
    model_dir: Path, name: str, versions: list[int], aliases: dict[str, int]
) -> TritonModel | None:
    """The versions Triton should serve (see the module docstring); None if none can be."""
    found = {v: _readable(model_dir / str(v), name, v) for v in versions}
    not_served = {v: why for v, why in found.items() if isinstance(why, str)}
    onnx_versions = [v for v, m in found.items() if isinstance(m, ModelMetadata)]
    if not onnx_versions:
        return None
    default = max(onnx_versions)
    reference = found[default]
    assert isinstance(reference, ModelMetadata)
    served = {default}
    for version in set(aliases.values()) & set(onnx_versions):
        candidate = found[version]
        assert isinstance(candidate, ModelMetadata)
        if candidate.labels != reference.labels:
            not_served[version] = f"(aliased, but its labels differ from version {default}'s)"
        elif candidate.input != reference.input:
            not_served[version] = f"(aliased, but its input differs from version {default}'s)"
        else:
            served.add(version)
    return TritonModel(name, tuple(sorted(served)), reference, not_served)


def render_config(model: TritonModel) -> str:
    """config.pbtxt in protobuf text format (`inference.ModelConfig`)."""
    spec = model.metadata.input
    reasons = [f"version {v} {why}" for v, why in sorted(model.not_served.items())]
    versions = ", ".join(map(str, model.versions))
    return (
        _HEADER.format(name=model.name)
        + (f"# Not served: {'; '.join(reasons)}.\n" if reasons else "")
        + f'name: "{model.name}"\n'
        + f'backend: "{BACKEND}"\n'
        + f"max_batch_size: {MAX_BATCH_SIZE}\n"
        + "input [\n  {\n"
        + f'    name: "{INPUT_NAME}"\n'
        + f"    data_type: {_TRITON_TYPES[spec.dtype]}\n"
        + f"    dims: [ {spec.height}, {spec.width}, {spec.channels} ]\n"
        + "  }\n]\n"
        + "output [\n  {\n"
        + f'    name: "{OUTPUT_NAME}"\n'
        + "    data_type: TYPE_FP32\n"
        + f"    dims: [ {len(model.metadata.labels)} ]\n"
        + f'    label_filename: "{LABELS_FILE}"\n'
        + "  }\n]\n"
        + f"dynamic_batching {{\n  max_queue_delay_microseconds: {MAX_QUEUE_DELAY_US}\n}}\n"
        + f"version_policy {{\n  specific {{\n    versions: [ {versions} ]\n  }}\n}}\n"
    )


def render_labels(labels: list[str]) -> str:
    """labels.txt: Triton reads one label per line, so a label may not hold a line break."""
    for label in labels:
        if "\n" in label or "\r" in label:
            raise ModelStoreError(f"label {label!r} holds a line break; Triton cannot read it")
    return "".join(f"{label}\n" for label in labels)


def write(model_dir: Path, model: TritonModel) -> None:
    """Replace labels.txt, then config.pbtxt, each atomically; the caller holds the model's lock.

    Labels first: a config never names a labels file that is not there yet.
    """
    write_bytes_atomic(model_dir / LABELS_FILE, render_labels(model.metadata.labels).encode())
    write_bytes_atomic(model_dir / CONFIG_FILE, render_config(model).encode())


def remove(model_dir: Path) -> bool:
    """Delete config.pbtxt and labels.txt (config first); whether there was a config."""
    existed = (model_dir / CONFIG_FILE).exists()
    for filename in (CONFIG_FILE, LABELS_FILE):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(model_dir / filename)
    fsync_dir(model_dir)
    return existed
