"""Grade on submit: a service over nbgrader's exchange, and grading executors (local processes or Dask)."""
