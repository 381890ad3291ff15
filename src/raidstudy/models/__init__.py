"""Estimators: each a model built from data and a specification, whose ``fit(...)`` returns results.

* :mod:`raidstudy.models.its`: interrupted time series for one series (segmented regression,
  count families, HAC covariance, counterfactual effects);
* :mod:`raidstudy.models.placebo`: in-time placebo events;
* :mod:`raidstudy.models.staggered`: several events at once (Sun-Abraham interaction-weighted
  and stacked event studies with clean controls, two-way fixed effects for comparison), on
  linearmodels panels;
* :mod:`raidstudy.models.comparison`: effects by section family and the P2P feed as control
  and as destination (difference-in-differences);
* :mod:`raidstudy.models.groups`: entry, exit and concentration of release groups around an
  event against placebo dates, and a group-level panel event study;
* :mod:`raidstudy.models.simulate`: simulated series with planted effects (labelled as simulated).
"""
