"""Hardware in the loop: simulated devices and sites for the demo, tests and benchmarks."""
