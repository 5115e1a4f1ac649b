"""The pure rules of the game: no planner, no pygame, no I/O."""
