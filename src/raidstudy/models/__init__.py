"""Estimators: each a model built from data and a specification, whose ``fit(...)`` returns results.

* :mod:`raidstudy.models.its`: interrupted time series for one series (segmented regression,
  count families, HAC covariance, counterfactual effects);
* :mod:`raidstudy.models.placebo`: in-time placebo events;
* :mod:`raidstudy.models.simulate`: simulated series with planted effects (labelled as simulated).
"""
