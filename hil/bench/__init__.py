"""Helpers of the `hil.bench_*` scripts: their common scaffolding, and for `hil.bench_drivers`
the simulator process, the planning count and the bus runs."""
