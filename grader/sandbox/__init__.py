"""The sandboxed processes of one grading run and the wire between them (empty: the runner's start stays fast)."""
