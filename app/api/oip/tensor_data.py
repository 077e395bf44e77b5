"""The data of one request input as a tensor: from its binary data section (little-endian,
row-major; BYTES elements length-prefixed) or from its JSON `data` (flat or nested).

Every refusal is an `InvalidInput` whose message names the tensor and what was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.api.oip.datatypes import BYTES_LENGTH, Datatype, as_int, is_int, shown_shape
from app.core.errors import InvalidInput


def binary_tensor(
    chunk: memoryview, datatype: Datatype, shape: tuple[int, ...], count: int, label: str
) -> np.ndarray | list[bytes]:
    if datatype.dtype is None:
        return _split_bytes(chunk, count, label)
    expected = count * datatype.dtype.itemsize
    if len(chunk) != expected:
        raise InvalidInput(
            f"{label}: binary_data_size is {len(chunk)} bytes but shape {shown_shape(shape)} "
            f"of {datatype.name} needs {expected} bytes",
            "binary_size_mismatch",
        )
    array = np.frombuffer(chunk, dtype=datatype.dtype, count=count).reshape(shape)
    if datatype.name == "BOOL" and count and array.view(np.uint8).max() > 1:
        raise InvalidInput(f"{label}: a BOOL element must be the byte 0 or 1", "value_out_of_range")
    return array


def _split_bytes(chunk: memoryview, count: int, label: str) -> list[bytes]:
    """The `count` length-prefixed elements that fill `chunk` exactly."""
    elements: list[bytes] = []
    offset, size = 0, len(chunk)
    for index in range(count):
        if offset + BYTES_LENGTH.size > size:
            raise InvalidInput(
                f"{label}: binary_data_size ends inside the length of element {index} of {count}",
                "bytes_length_overrun",
            )
        (length,) = BYTES_LENGTH.unpack_from(chunk, offset)
        offset += BYTES_LENGTH.size
        if length > size - offset:
            raise InvalidInput(
                f"{label}: element {index} declares {length} bytes but only {size - offset} "
                "are left in its binary_data_size",
                "bytes_length_overrun",
            )
        elements.append(bytes(chunk[offset : offset + length]))
        offset += length
    if offset != size:
        raise InvalidInput(
            f"{label}: {size - offset} bytes of its binary_data_size are left after its "
            f"{count} elements",
            "binary_size_mismatch",
        )
    return elements


def json_tensor(
    data: Any, datatype: Datatype, shape: tuple[int, ...], count: int, label: str
) -> np.ndarray | list[bytes]:
    leaves = _flatten(data, label)
    if len(leaves) != count:
        raise InvalidInput(
            f"{label}: 'data' holds {len(leaves)} elements but shape {shown_shape(shape)} "
            f"needs {count}",
            "element_count_mismatch",
        )
    if datatype.dtype is None:
        if not all(isinstance(leaf, str) for leaf in leaves):
            raise InvalidInput(f"{label}: every BYTES element must be a string", "invalid_value")
        try:
            return [leaf.encode("utf-8") for leaf in leaves]
        except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
            raise InvalidInput(
                f"{label}: a BYTES element is not valid Unicode text", "invalid_value"
            ) from exc
    return _numeric(leaves, datatype, label).reshape(shape)


def _flatten(data: Any, label: str) -> list[Any]:
    """The leaves of `data` (flat or nested arrays) in row-major order, without recursion."""
    if not isinstance(data, list):
        raise InvalidInput(f"{label}: 'data' must be an array", "malformed_request")
    leaves: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            leaves.append(item)
        else:
            stack.pop()
    return leaves


def _numeric(leaves: list[Any], datatype: Datatype, label: str) -> np.ndarray:
    dtype = datatype.dtype
    assert dtype is not None
    if datatype.name == "BOOL":
        if not all(isinstance(leaf, bool) for leaf in leaves):
            raise InvalidInput(
                f"{label}: every BOOL element must be true or false", "invalid_value"
            )
        return np.array(leaves, dtype=dtype)
    if dtype.kind in "iu":
        if not all(is_int(leaf) for leaf in leaves):
            leaves = [as_int(leaf) for leaf in leaves]  # 3.0 is an integer too
            if any(leaf is None for leaf in leaves):
                raise InvalidInput(
                    f"{label}: every {datatype.name} element must be an integer",
                    "invalid_value",
                )
        if leaves:
            info = np.iinfo(dtype)
            low, high = min(leaves), max(leaves)
            if low < info.min or high > info.max:
                bad = low if low < info.min else high
                raise InvalidInput(
                    f"{label}: {str(bad)[:40]} does not fit {datatype.name} "
                    f"({info.min} to {info.max})",
                    "value_out_of_range",
                )
        return np.array(leaves, dtype=dtype)
    if not all(isinstance(leaf, int | float) and not isinstance(leaf, bool) for leaf in leaves):
        raise InvalidInput(
            f"{label}: every {datatype.name} element must be a number", "invalid_value"
        )
    try:
        values = np.array(leaves, dtype=np.float64)
    except OverflowError as exc:  # an integer beyond float64
        raise InvalidInput(
            f"{label}: a value does not fit {datatype.name}", "value_out_of_range"
        ) from exc
    if not np.isfinite(values).all():
        raise InvalidInput(f"{label}: NaN and infinities are not JSON numbers", "invalid_value")
    with np.errstate(over="ignore"):
        array = values.astype(dtype)
    if not np.isfinite(array).all():
        raise InvalidInput(
            f"{label}: a value is beyond the range of {datatype.name}", "value_out_of_range"
        )
    return array
