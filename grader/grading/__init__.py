"""Grading one notebook: a source and a submission in, a NotebookResult out."""
