"""Scenario files (FORMAT.md, version 1) and the scripts that generate some of them."""
