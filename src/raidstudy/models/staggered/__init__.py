"""Several events at once: staggered event studies that stay unbiased under heterogeneous effects.

* :class:`SunAbraham`: Sun and Abraham's (2021) interaction-weighted estimator (cohort x
  relative-period effects, aggregated by cohort shares; aggregate ATT with its standard error
  as fixest's ``summary(agg = "att")``), validated against fixest on ``base_stagg``;
* :class:`StackedEventStudy`: each event's window stacked with clean controls;
* :class:`TWFE`: conventional two-way fixed effects, for comparison;
* :func:`build_event_panel` / :func:`catalogue_study`: the project's feed x family indicator
  series around the catalogue events, treated by target type;
* :func:`simulate_staggered`: SIMULATED panels with planted heterogeneous dynamic effects.

All fits run on ``linearmodels.PanelOLS`` (absorbed effects; clustered or Driscoll-Kraay
covariance). See ``docs/staggered.md``.
"""
from raidstudy.models.staggered.catalogue import (
                                                  TARGET_CLASSES,
                                                  CatalogueStudy,
                                                  build_event_panel,
                                                  catalogue_study,
)
from raidstudy.models.staggered.estimators import TWFE, StackedEventStudy, SunAbraham
from raidstudy.models.staggered.results import StaggeredResults, StaggeredSummary
from raidstudy.models.staggered.simulate import simulate_staggered

__all__ = [
                                                  "TARGET_CLASSES",
                                                  "TWFE",
                                                  "CatalogueStudy",
                                                  "StackedEventStudy",
                                                  "StaggeredResults",
                                                  "StaggeredSummary",
                                                  "SunAbraham",
                                                  "build_event_panel",
                                                  "catalogue_study",
                                                  "simulate_staggered",
]
