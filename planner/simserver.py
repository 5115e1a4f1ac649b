"""The old name of `python -m planner.sim.server`, kept because scripts and READMEs use it."""

from planner.sim.server import main

if __name__ == "__main__":
    raise SystemExit(main())
