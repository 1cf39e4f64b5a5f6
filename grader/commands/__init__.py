"""One module per ``python -m grader`` subcommand (see ``grader.cli``)."""
