"""Evals: suites, graders, the resumable runner, the terminal report and the CLI."""

from evals.code_grader import CodeVerdict, agrade_code, grade_code
from evals.math_grader import grade_math

__all__ = ["CodeVerdict", "agrade_code", "grade_code", "grade_math"]
