"""What the benchmark ran on: CPU model, cores, caches, load."""

from __future__ import annotations

import os
import platform
import subprocess


def load_average() -> str:
    """`/proc/loadavg` (1, 5, 15-minute load, runnable/total tasks), or "" if unreadable."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return ""


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def machine_info() -> dict[str, str]:
    """CPU model, core count, L2 and L3 (from lscpu), Python and platform."""
    cpu = _lscpu()
    return {
        "cpu": cpu.get("Model name", platform.processor() or "unknown"),
        "cpus": cpu.get("CPU(s)", str(os.cpu_count())),
        "cores_per_socket": cpu.get("Core(s) per socket", ""),
        "l2": cpu.get("L2 cache", ""),
        "l3": cpu.get("L3 cache", ""),
        "avx512": "yes" if "avx512f" in cpu.get("Flags", "").split() else "no",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
