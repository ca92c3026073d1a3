"""Life-cycle assessment of the study's scenarios from this project's energy models.

Modules: :mod:`.data` (sourced inventory and CML-IA factors from ``lca/``),
:mod:`.scenarios` (scenario files, variants, validation), :mod:`.energy` (processing
energy from the process models, or a pinned figure), :mod:`.system` (one scenario's
product system), :mod:`.calc` (sparse matrix LCA), :mod:`.study` (all scenarios,
contribution by stage, sensitivity, Monte Carlo), :mod:`.plots`, :mod:`.brightway`.
"""
