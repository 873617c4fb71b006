"""Evals: suites, graders, the resumable runner and the report.

Layer: above the controllers. Imports `reasoner`, `strategies` and `controllers`, never an entry
point (the CLI in `cli/`, the server in `server/`; DESIGN.md section 1).
"""

from evals.code_grader import CodeVerdict, agrade_code, grade_code
from evals.math_grader import grade_math
from evals.report import build_report, load_report
from evals.runner import EvalPlan, EvalResult, arun_eval, make_plan
from evals.suites import Problem, grade, load_suite, suite_names

__all__ = [
    "CodeVerdict",
    "EvalPlan",
    "EvalResult",
    "Problem",
    "agrade_code",
    "arun_eval",
    "build_report",
    "grade",
    "grade_code",
    "grade_math",
    "load_report",
    "load_suite",
    "make_plan",
    "suite_names",
]
