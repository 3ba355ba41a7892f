"""Batch scanning: every release of every product, on one machine or a Dask cluster.

The client (``cra-fw batch``) collects images, hashes them (content addresses),
skips those already scanned and hands one task per distinct image to a Dask
cluster (an embedded ``LocalCluster`` by default).  A task runs the normal
``cra-fw scan`` in a child forked from a per-worker runner process
(:mod:`cra_fw.batch.runner`), bounded in time and memory, and writes
``OUTDIR/<sha256>/``.  The client alone writes the ledger and the portfolio.

Dask is imported only here and only when a batch runs, so ``cra-fw scan`` never
pays for it.
"""
