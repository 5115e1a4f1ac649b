"""The match layer: sessions, launch, records, reports; between the planner and the UI."""
