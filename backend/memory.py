"""Memory the backend process gives back: glibc's allocator settings for a long-lived process.

glibc keeps freed memory for reuse: it raises its mmap threshold each time a large block is freed, so
later blocks of that size come from the heap and stay in the process after they are freed, and every
thread that allocates gets an arena of its own. A backend that runs speech recognition in a helper
thread and works on clips of minutes then holds hundreds of MB it no longer uses. Fixed settings
(blocks of 1 MB and more always mapped and returned on free, two arenas) cut the peak of a 2-minute
Generate from 1689 to 1482 MB (docs/speed.md). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1 << 20
ARENA_MAX = 2


def return_freed_memory() -> bool:
    """Set glibc's allocator to return large freed blocks and keep few arenas; False where not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
