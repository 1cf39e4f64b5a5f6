"""Where gradings run: a task of plain data, and executors that grade it (local processes or dask.distributed)."""
