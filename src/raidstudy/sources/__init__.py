"""Adapters: one per input format, each producing the releases table or an indicator series.

* :mod:`raidstudy.sources.nzedb` -- the nZEDb daily PreDB dumps (used by ``raidstudy ingest``);
* :mod:`raidstudy.sources.predb_json` -- predb-style JSON records (predb.ovh, predb.net);
* :mod:`raidstudy.sources.generic_csv` -- any indicator as ``date,value[,series]``.
"""
