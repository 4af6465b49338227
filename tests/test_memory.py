"""The backend process gives large freed blocks back to the system (glibc)."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys, psutil, numpy as np
if sys.argv[1] == "set":
    from backend.memory import return_freed_memory
    assert return_freed_memory()
rss = lambda: psutil.Process().memory_info().rss / 2**20
base = rss()
block = np.ones(1 << 20); del block  # a freed 8 MB block: glibc would raise its mmap threshold past it
blocks = [np.ones(1 << 20) for _ in range(40)]  # 320 MB
del blocks[:-1]  # the last one lives on, above the others in the heap (as results outlive a step's buffers)
print(rss() - base)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_freed_blocks_leave_the_process():
    def retained(mode):
        done = subprocess.run([sys.executable, "-c", PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True)
        return float(done.stdout.strip())

    assert retained("default") > 200  # what the setting is for: glibc kept the blocks
    assert retained("set") < 50


def test_the_command_line_sets_it(monkeypatch):
    from backend import cli, memory

    calls = []
    monkeypatch.setattr(memory, "return_freed_memory", lambda: calls.append(1) or True)
    assert cli.main(["generate", "/nonexistent.wav", "-o", "/tmp/x.npz"]) == 2
    assert calls == [1]
