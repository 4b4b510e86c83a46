"""A reused worker gives a finished trial's freed memory back to the OS."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# ~200 MiB of 4 KB blocks (malloc'd by glibc, not pymalloc); the last one stays alive, so glibc's
# own trimming of the heap's top cannot return the space below it.
SCRIPT = textwrap.dedent("""
    import os, sys
    from hftune.training.heap import release_freed_memory

    def rss_mib():
        pages = int(open("/proc/self/statm").read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20

    blocks = [bytes(4000) for _ in range(50_000)]
    keep = blocks[-1]
    del blocks
    before = rss_mib()
    released = release_freed_memory() if sys.argv[1] == "release" else None
    print(released, round(before), round(rss_mib()))
    """)


def _run(mode: str) -> tuple[str, int, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    return out[0], int(out[1]), int(out[2])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc: Linux only")
def test_release_returns_freed_heap_pages() -> None:
    _, before, after = _run("keep")
    assert before > 150 and after > 150  # freed, yet still resident: what a reused worker saw
    released, before, after = _run("release")
    assert released == "True"
    assert before > 150 and after < before - 150
