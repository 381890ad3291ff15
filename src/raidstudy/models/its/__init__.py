"""Interrupted time series for one series (optionally against control series).

The model is built from data and a specification (:class:`ITS`), fitted by
:meth:`ITS.fit`, which returns an :class:`ITSResults`. The modules follow the data:

* :mod:`~raidstudy.models.its.data`: the series on a regular grid, the event position;
* :mod:`~raidstudy.models.its.design`: the segmented-regression design matrix and its checks;
* :mod:`~raidstudy.models.its.fitting`: maximum-likelihood fits of the families;
* :mod:`~raidstudy.models.its.covariance`: model-based, robust and HAC covariance;
* :mod:`~raidstudy.models.its.model` and :mod:`~raidstudy.models.its.results`: the public classes.
"""
from __future__ import annotations

from raidstudy.models.its.covariance import nw_auto_lags
from raidstudy.models.its.dynamic import (DynamicSummary, EventStudy, EventStudyResults, EventStudySummary,
                                          dynamic_summary, misfit_test)
from raidstudy.models.its.model import ITS
from raidstudy.models.its.results import ARIMAResults, ITSResults, ITSSummary
from raidstudy.models.its.vocabulary import COUNT_FAMILIES, COV_TYPES, FAMILIES, ITSWarning

__all__ = ["ITS", "ITSResults", "ITSSummary", "ARIMAResults", "ITSWarning", "nw_auto_lags",
           "FAMILIES", "COUNT_FAMILIES", "COV_TYPES",
           "EventStudy", "EventStudyResults", "EventStudySummary", "DynamicSummary", "dynamic_summary", "misfit_test"]
