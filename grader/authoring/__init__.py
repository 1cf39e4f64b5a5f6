"""The course author's tools: dev-check, the scaffold of a new lesson, and the contract its tests follow."""
