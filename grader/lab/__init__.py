"""The learner's JupyterLab: their workspace, their terminal's shell, the Validate button."""
