"""The course author's tools: dev-check, and the scaffold of a new lesson."""
