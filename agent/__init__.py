"""edge-agent: site gateway agent for EV charging hubs with PV and battery."""

__version__ = "0.1.0"
