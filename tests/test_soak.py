"""A short run of the soak test (tools/soak.py): 8 threads mixing stateless calls, stateful
streaming and save/load/pickle round trips for a few seconds, every result equal to its serial
run, no error, resident memory flat. The long run is documented in docs/reliability.md."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_short_soak_matches_serial_runs_with_flat_memory():
    seconds = os.environ.get("RNNKIT_SOAK_SECONDS", "8")
    # AddressSanitizer (tools/sanitize.sh) holds freed memory in its quarantine, so resident
    # memory grows by design there: the results are still checked, the memory is not.
    growth = ["--rss-growth-mib", "1e9"] if os.environ.get("RNNKIT_SANITIZE") == "1" else []
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "soak.py"), "--seconds", seconds,
         "--threads", "8", *growth],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "soak:" in result.stdout and "PROBLEM" not in result.stdout
