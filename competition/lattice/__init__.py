"""The lattice competition's build, stage by stage.

::

labels (spglib, the lattice of each structure)
-> pipeline (the per-structure work on a process pool; cluster: on dask; cache)
-> splits (dedup, balance, grouped train/test and Public/Private)
-> outliers -> build (assemble and write: outdir, the streams of files)
-> report (data card, overview figure) and summary.
"""
