"""Process memory: large freed buffers go back to the operating system at once."""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
# Allocations of this size or more get their own mapping, unmapped when freed.
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def return_large_frees_to_os(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold, so a decoded image's memory leaves RSS when it is freed.

    By default glibc raises the threshold (up to 32 MiB) after the first large free; from then
    on Pillow's 16 MiB image blocks come from heap arenas that keep their pages. Measured with
    4 clients of the worst accepted images (see TAGGER_MAX_DECODE_BYTES): RSS peaked +319 MiB
    over the idle server and stayed +220 MiB; with a fixed 4 MiB threshold, +172 and +26.
    False (nothing changed) where the C library has no `mallopt` (not glibc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    if not done:
        logger.warning("could not set the malloc mmap threshold; RSS may stay high after decodes")
    return done
