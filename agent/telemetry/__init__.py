"""Telemetry readers of the site state: Prometheus now, MQTT later. Never in the control path."""
