"""`python -m game.ladder`: squads measured against each other.

A matrix of controllers (the rule planner, the simulated LLM at each tier) x scenarios x
sim latency presets x seeds, sides swapped, played headless in worker processes; a
table with 95% (Wilson) intervals, a JSON summary and a self-contained HTML chart.
Results are appended to a JSONL file as matches finish, so a rerun resumes.

    cells.py   what one match is (Cell), the matrix, playing one cell
    stats.py   Wilson intervals, medians, folding results into rows
    report.py  the text table, the JSON summary and the HTML chart
    __main__   arguments, the worker pool, the progress line, resuming
"""
