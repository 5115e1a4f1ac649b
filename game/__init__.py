"""squadmind game: pure world rules, snapshots and controllers (no pygame outside game/ui)."""
