"""A study: parameters and their one validation function (:mod:`~raidstudy.study.parameters`),
the artefacts of a run directory (:mod:`~raidstudy.study.artefacts`), and runs and batches
of notebooks on local processes or Dask (:mod:`~raidstudy.study.runs`)."""
