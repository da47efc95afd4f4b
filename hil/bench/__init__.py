"""Helpers of `hil.bench_drivers`: the simulator process, the planning count, the bus runs."""
