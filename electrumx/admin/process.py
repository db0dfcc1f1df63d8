"""Facts about the running process and its files, for getinfo and metrics."""

import os
import resource


def resident_memory_bytes() -> int:
    """Resident memory now (from /proc on Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def directory_bytes(directory: str) -> int:
    """Total size of the files directly in `directory` (a LevelDB's)."""
    return sum(entry.stat().st_size for entry in os.scandir(directory) if entry.is_file())
