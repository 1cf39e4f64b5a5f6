"""nbgrader configuration for the course (instructors and the grader read it)."""

from grader.course.cells import STUB  # the unanswered cell the grader also grades: written once

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = "caching-course"
# The instructor's notebooks (solutions and hidden tests) live in solutions/<lesson>/;
# `nbgrader generate_assignment <lesson>` writes the learner version to notebooks/<lesson>/.
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.ClearSolutions.code_stub = {"python": STUB}
# nbgrader's defaults, plus hypothesis' example database: `nbgrader validate` (running the hidden
# tests in place) leaves `.hypothesis/` in solutions/<lesson>/, and generate_assignment would copy it
# into the learners' release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".hypothesis"]
