"""glibc malloc settings for a server that allocates and frees ~0.6-5 MB request buffers all the time.

By default glibc hands freed memory at the top of the heap back to the kernel once more than ~2x the
(dynamic) mmap threshold is free, so under concurrent load every request faults its buffers' pages in
again (perf: `clear_page_erms` ~8% of server CPU at 4 requests in flight). Fixed thresholds keep that
memory for the next request; buffers above MMAP_THRESHOLD (model weights, huge batches) still come
from mmap and go back to the kernel when freed, so retired model versions still return their memory.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

# mallopt() parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 8 << 20
TRIM_THRESHOLD = 64 << 20


def keep_freed_buffers() -> None:
    """Applies the thresholds, unless this is not glibc or the user tuned malloc already."""
    if not sys.platform.startswith("linux") or _user_tuned():
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return  # not glibc (musl, ...): leave its allocator alone
    if not (
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    ):
        log.debug("mallopt refused the thresholds; default malloc behaviour kept")


def _user_tuned() -> bool:
    return "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
        name.startswith("MALLOC_") for name in os.environ
    )
