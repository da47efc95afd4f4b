"""Simulated SunSpec devices (meter, PV inverter, battery), served over real Modbus.

The register image is built with pysunspec2's own model classes (`sunspec2.device.Model`):
point offsets, encodings, which scale factor belongs to which point and the "not implemented"
values all come from pysunspec2 and the SunSpec Alliance's model definitions it ships. It
deliberately does not use the agent's `agent/drivers/sunspec_models.py`: a layout bug there
must show up as a wrong reading, not be mirrored here. Marker, bases and the end model
(0xFFFF, L = 0) follow the SunSpec Information Model Specification.

Values are computed when the device is read, from the clock the constructor takes, so they
move on their own (PV over the day, a battery's state of charge) and a test can step time.

Sign conventions (the SunSpec JSON does not state one for models 103 and 802, so these are the
simulator's, stated for profile authors): model 203 W is positive when the site imports; model
103 W is positive when the inverter delivers AC power, so a battery inverter shows charging as
negative W; model 802 W and A are positive when the battery discharges.
"""

from hil.devices.sunspec.battery import SimulatedSunSpecBattery
from hil.devices.sunspec.image import SUNSPEC_BASES, Clock, SunSpecImage
from hil.devices.sunspec.inverter import DayCurvePv, FixedPv, PvSource, SimulatedSunSpecInverter
from hil.devices.sunspec.meter import METER_SCALE_FACTORS, SimulatedSunSpecMeter
from hil.devices.sunspec.simulator import SunSpecSimulator

__all__ = [
    "METER_SCALE_FACTORS",
    "SUNSPEC_BASES",
    "Clock",
    "DayCurvePv",
    "FixedPv",
    "PvSource",
    "SimulatedSunSpecBattery",
    "SimulatedSunSpecInverter",
    "SimulatedSunSpecMeter",
    "SunSpecImage",
    "SunSpecSimulator",
]
