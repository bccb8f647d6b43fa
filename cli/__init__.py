"""The `ferry` command: Ferry from a terminal or a CI job, over the API and event stream."""
