"""Sweeps, in floors that import only downwards: `config` (experiment and sweep configs) ->
`experiment` (one run, checkpoints) -> `tracking` (MLflow) -> `execution` (Ray Tune) and `report`
(reads MLflow, no Ray) -> `commands` and `cli` (the `sweep` command line)."""
