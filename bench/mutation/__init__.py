"""Mutation testing of every exercise's reference solution, through the real grader.

``python -m bench.mutation`` makes mutants of each reference answer (``mutate.py``: a lock or ``with``
removed, a ``try`` removed, a statement dropped, a comparison flipped or moved across its boundary,
``and``/``or`` swapped, a ``not`` removed, an operator or a constant changed, an argument dropped or
swapped), grades each one with ``grader.grading.grade.grade_notebook`` (``run.py``) and writes
``bench/MUTATION.md`` (``report.py``): per exercise, mutants, killed, surviving, equivalent.

Why not mutmut or cosmic-ray: both mutate ``.py`` files of an importable package in place and run a test
command per mutant; the code under test here lives in notebook answer cells, and only the lines between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` are a learner's to write. A mutator over those regions
(about 150 lines on ``ast``) feeds the grader exactly what a learner's notebook would, so a mutant is
killed by the same sandbox, judge and hidden tests that grade learners.

Results are cached in ``bench/mutation/results.json`` by mutant (the hash of the exercise and the mutated
code) and the hash of its exercise's test cell, written after every result: a stopped run resumes, and a
changed test cell regrades only its own exercise's mutants. ``--jobs N`` grades N notebooks at a time;
``--lesson 04`` one lesson; ``--max-per-exercise N`` a seeded sample spread over the operators. Survivors
that behave exactly like the reference are listed with the reason in ``bench/mutation/equivalent.toml``.
"""
