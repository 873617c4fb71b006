"""Evals: suites, graders, the resumable runner, the terminal report and the CLI."""
