"""From raw pre-database dumps to indicator series.

raw dumps (``data/raw``) -> :mod:`~raidstudy.data.sources` (one reader per format) ->
:mod:`~raidstudy.data.ingest` (the releases table, ``data/interim``) ->
:mod:`~raidstudy.data.indicators` (daily counts with a coverage mask, ``data/processed``).
:mod:`~raidstudy.data.fetch` downloads dumps, :mod:`~raidstudy.data.events` reads the event
catalogue, :mod:`~raidstudy.data.releases` holds the release-name rules, and
:mod:`~raidstudy.data.cli` the command-line verbs ``fetch``, ``ingest`` and ``build``.
"""
