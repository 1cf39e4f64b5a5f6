"""nbgrader configuration of the grader's tiny example course."""

from grader.course.cells import STUB  # the unanswered cell the grader also grades: written once

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.course_id = "fixture-course"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.ClearSolutions.code_stub = {"python": STUB}
