"""Benchmarks of the course and its grader (``make bench`` / ``python -m bench``).

Benchmarks report, they never assert. Each section is a module with a
``run(cfg) -> dict`` function returning plain data (JSON-serialisable); the
report (``bench.report``) turns that data into Markdown tables and PNG charts.
"""
