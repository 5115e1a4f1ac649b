"""squadmind planner: turns per-agent snapshots into validated plans (never imports pygame)."""
