"""Adapters: one per input format, each producing the releases table or an indicator series.

* :mod:`raidstudy.data.sources.nzedb` -- the nZEDb daily PreDB dumps (used by ``raidstudy ingest``);
* :mod:`raidstudy.data.sources.predb_json` -- predb-style JSON records (predb.ovh, predb.net);
* :mod:`raidstudy.data.sources.generic_csv` -- any indicator as ``date,value[,series]``.
"""
