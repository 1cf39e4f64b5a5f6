"""A whole class over nbgrader's folders and gradebook: autograde, stored results, grades, the demo."""
