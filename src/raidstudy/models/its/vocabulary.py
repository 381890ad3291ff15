"""The ITS engine's vocabulary: families, covariance names, weekday names, its warning class.

One place for each list, so that the model, the study parameters and the reports accept
and print the same names.
"""
from __future__ import annotations

FAMILIES = ("gaussian", "poisson", "quasipoisson", "negbin")
COUNT_FAMILIES = ("poisson", "quasipoisson", "negbin")
COV_TYPES = ("hac", "robust", "nonrobust")
DOW_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ITSWarning(UserWarning):
    """A warning from the ITS engine (dropped term, few periods, weak diagnostics)."""
