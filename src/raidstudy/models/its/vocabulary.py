"""The ITS engine's vocabulary: families, covariance names, weekday names, its warning class.

One place for each list, so that the model, the study parameters and the reports accept
and print the same names.
"""
from __future__ import annotations

FAMILIES = ("negbin", "poisson", "quasipoisson", "gaussian")
COUNT_FAMILIES = ("poisson", "quasipoisson", "negbin")
#: Kinds of event-study bins that are reported but not estimated: wholly inside the
#: transition of an imprecisely dated event, or with no collected period.
NOT_ESTIMATED_BINS = ("transition", "no data")
COV_TYPES = ("ewc", "hac", "newey", "robust", "nonrobust")
#: What users type for each covariance (statsmodels spells HAC in capitals).
COV_ALIASES = {"hac": "hac", "newey": "newey", "newey-west": "hac", "nw": "hac", "ewc": "ewc",
               "robust": "robust", "hc0": "robust", "nonrobust": "nonrobust", "model": "nonrobust"}
#: Default number of cosine terms of the EWC covariance: chosen by measurement, the largest
#: number whose 95 % intervals of the level change and of the relative effect cover 0.92-0.98 on
#: every scenario of docs/coverage.md (8 gave 0.90 for the relative effect on the
#: SPARKS-calibrated simulator, 5 gave 0.92 for the level under a variance change).
EWC_TERMS = 6
DOW_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ITSWarning(UserWarning):
    """A warning from the ITS engine (dropped term, few periods, weak diagnostics)."""
