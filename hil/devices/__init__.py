"""Simulated devices served over real sockets."""
