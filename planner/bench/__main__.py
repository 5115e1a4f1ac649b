"""`python -m planner.bench`."""

from planner.bench.cli import main

raise SystemExit(main())
