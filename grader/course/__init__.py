"""The course on disk: its lessons, notebooks and nbgrader's commands over them; never runs learner code."""
