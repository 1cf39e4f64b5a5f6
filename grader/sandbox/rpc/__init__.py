"""The channel between the judge and the learner's process: values, wire, endpoint and remote objects."""
