"""`python -m rnnkit.bench`: see `rnnkit.bench.cli`."""

from .cli import main

raise SystemExit(main())
