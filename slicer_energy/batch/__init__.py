"""Batches and sweeps: many parts × many settings through predict's one dispatch, on Dask.

Owns the run (:mod:`.run`: jobs, shared voxelising tasks, the Dask client, signals), the
sweep files (:mod:`.sweep`), the results directory and progress line (:mod:`.results`) and
the report over results (:mod:`.report`: summaries, sensitivity, plots). The CLI commands
are ``commands/batch.py`` and ``commands/batch_report.py``.

May import ``predict`` (the one dispatch), ``sintering`` (layer grids, machine loaders),
``samples``, ``lca.data`` and ``errors``; nothing imports it but ``commands``. Dask workers
unpickle task functions by their module path (``slicer_energy.batch.run``).
"""
