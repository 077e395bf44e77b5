"""The tensor datatypes of the Open Inference Protocol v2 and the checks of a tensor's
description: its datatype name, its shape, and its element count against a limit.

Every refusal is an `InvalidInput` whose message names the tensor and what was expected.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.errors import InputProblem, InvalidInput

BYTES = "BYTES"
MAX_RANK = 32  # numpy's limit is 64 (32 before numpy 2)
_MAX_DIM = (1 << 63) - 1  # the spec: a dimension is representable as uint64; Triton reads int64
# A BYTES element in binary data: a 4-byte little-endian length, then the bytes.
BYTES_LENGTH = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class Datatype:
    """A tensor datatype of the spec: its name and little-endian numpy dtype (None for BYTES)."""

    name: str
    dtype: np.dtype | None

    @property
    def itemsize(self) -> int | None:
        return None if self.dtype is None else self.dtype.itemsize


DATATYPES: dict[str, Datatype] = {
    name: Datatype(name, None if code is None else np.dtype(code))
    for name, code in (
        ("BOOL", "?"),
        ("UINT8", "<u1"),
        ("UINT16", "<u2"),
        ("UINT32", "<u4"),
        ("UINT64", "<u8"),
        ("INT8", "<i1"),
        ("INT16", "<i2"),
        ("INT32", "<i4"),
        ("INT64", "<i8"),
        ("FP16", "<f2"),
        ("FP32", "<f4"),
        ("FP64", "<f8"),
        (BYTES, None),
    )
}
# Triton knows BF16, which numpy cannot hold without ml_dtypes: refused as unsupported.
_KNOWN_UNSUPPORTED = frozenset({"BF16"})


def parse_datatype(value: Any, label: str) -> Datatype:
    if not isinstance(value, str):
        raise InvalidInput(f"{label}: 'datatype' must be a string", "malformed_request")
    found = DATATYPES.get(value)
    if found is not None:
        return found
    if value in _KNOWN_UNSUPPORTED:
        raise InvalidInput(
            f"{label}: datatype {value} is not supported by this server",
            "unsupported_datatype",
            InputProblem.UNSUPPORTED,
        )
    raise InvalidInput(
        f"{label}: unknown datatype {value[:40]!r}; expected one of {', '.join(DATATYPES)}",
        "unknown_datatype",
    )


def parse_shape(value: Any, label: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise InvalidInput(f"{label}: 'shape' must be an array of dimensions", "invalid_shape")
    if len(value) > MAX_RANK:
        raise InvalidInput(
            f"{label}: 'shape' has {len(value)} dimensions; at most {MAX_RANK} are supported",
            "invalid_shape",
        )
    dims = [as_int(dim) for dim in value]
    for raw, dim in zip(value, dims, strict=True):
        if dim is None or dim < 0 or dim > _MAX_DIM:
            shown = repr(raw)[:40]
            raise InvalidInput(
                f"{label}: every dimension of 'shape' must be an integer from 0 to {_MAX_DIM}, "
                f"got {shown}",
                "invalid_shape",
            )
    return tuple(dim for dim in dims if dim is not None)


def element_count(shape: tuple[int, ...], label: str, max_elements: int) -> int:
    """prod(shape), refused (413) as soon as the running product passes `max_elements`, or
    when one dimension does (even beside a 0: numpy cannot shape an array so)."""
    for dim in shape:
        if dim > max_elements:
            raise InvalidInput(
                f"{label}: dimension {dim} of shape {shown_shape(shape)} is more than the limit "
                f"of {max_elements} elements",
                "too_many_elements",
                InputProblem.TOO_LARGE,
            )
    if 0 in shape:
        return 0
    count = 1
    for dim in shape:
        count *= dim
        if count > max_elements:
            raise InvalidInput(
                f"{label}: shape {shown_shape(shape)} holds more than {max_elements} elements; "
                f"the limit is {max_elements}",
                "too_many_elements",
                InputProblem.TOO_LARGE,
            )
    return count


def shown_shape(shape: Sequence[int]) -> str:
    text = str(list(shape))
    return text if len(text) <= 80 else text[:77] + "...]"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def as_int(value: Any) -> int | None:
    """An integer as JSON Schema counts them (`3` and `3.0`; not `true`, not `3.5`), as an
    int; None for anything else."""
    if is_int(value):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None
