"""`python -m planner.bench`: where the project's performance claims come from."""
