"""The site configuration: one TOML file, every key overridable from the environment.

These models are the contract between a technician's `site.toml` and the agent. Every model
forbids unknown keys, so a typo is an error instead of a silently ignored setting. Checks that
span several sections (a device's bus must exist, ...) live in `agent.config_checks`; loading
and error reporting live in `agent.config_loader`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_CONFIG_PATH = Path("/etc/edge-agent/site.toml")
ENV_PREFIX = "EDGE_AGENT_"
ENV_NESTED_DELIMITER = "__"

_IDENT = r"^[a-z0-9][a-z0-9_-]*$"
Identifier = Annotated[
    str,
    Field(
        pattern=_IDENT,
        max_length=64,
        description="lower-case letters, digits, '-' and '_' (used in metric labels and topics)",
    ),
]


class _Section(BaseModel):
    """Base for every config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSection(_Section):
    """The grid connection point and the site's identity."""

    name: Identifier
    grid_import_limit_kw: float = Field(gt=0, description="contracted import limit")
    grid_export_limit_kw: float = Field(default=0.0, ge=0, description="0 = zero-export site")
    phase_current_limit_a: float | None = Field(
        default=None, gt=0, description="per-phase fuse at the connection point"
    )
    nominal_voltage_v: float = Field(default=230.0, gt=0, le=400)
    grid_meter: Identifier | None = Field(
        default=None, description="id of the meter device at the grid connection point"
    )
    limit_signal: Identifier | None = Field(
        default=None,
        description="id of a signal device whose import_limit (a utility's or a park "
        "controller's curtailment) is in force below grid_import_limit_kw",
    )
    limit_signal_hold_s: float = Field(
        default=900.0,
        ge=0,
        description="how long the last signalled limit stays in force once the signal is unknown",
    )


class Parity(StrEnum):
    NONE = "N"
    EVEN = "E"
    ODD = "O"


class SerialBus(_Section):
    """An RS-485 line behind a USB adapter or a UART: one worker owns it."""

    type: Literal["serial"]
    name: Identifier
    port: str = Field(min_length=1, description="e.g. /dev/serial/by-id/usb-FTDI_...")
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Parity = Parity.NONE
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    timeout_s: float = Field(default=0.5, gt=0, le=10)
    protocol: Literal["modbus", "pylontech"] = Field(
        default="modbus", description="what the line speaks: Modbus RTU or a BMS's own protocol"
    )


class TcpBus(_Section):
    """A Modbus TCP endpoint: one device, or a gateway serving several unit ids."""

    type: Literal["tcp"]
    name: Identifier
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    timeout_s: float = Field(default=1.0, gt=0, le=30)


Bus = Annotated[SerialBus | TcpBus, Field(discriminator="type")]


class RegisterMapping(_Section):
    """Where a template profile's field or setpoint sits on this particular device."""

    address: int = Field(ge=0, le=0xFFFF)
    type: Literal[
        "u16", "s16", "u32", "s32", "u64", "s64", "f32", "f64", "enum16", "bitfield16", "bitfield32"
    ]
    kind: Literal["holding", "input"] = Field(default="holding", alias="register")
    word_order: Literal["big", "little"] = "big"
    scale: float = Field(default=1.0, description="register value x scale = value in its unit")
    min: float | None = Field(default=None, description="setpoints: lowest value allowed")
    max: float | None = Field(default=None, description="setpoints: highest value allowed")
    renew_s: float | None = Field(
        default=None, gt=0, description="setpoints: the device drops the value after this long"
    )

    @model_validator(mode="after")
    def _scale_and_range(self) -> RegisterMapping:
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class DeviceKind(StrEnum):
    METER = "meter"
    INVERTER = "inverter"
    BATTERY = "battery"
    CHARGER = "charger"
    SIGNAL = "signal"  # a utility's control box or a park controller that signals limits


class Device(_Section):
    """One physical device: what it is, which register map it speaks, where it is."""

    id: Identifier
    kind: DeviceKind
    profile: str = Field(min_length=1, description="file name in agent/drivers/profiles")
    bus: Identifier
    unit_id: int = Field(
        default=1, ge=0, le=255, description="1-247 on serial lines; TCP devices may use 0 or 255"
    )
    poll_interval_s: float = Field(default=1.0, gt=0, le=3600)
    description: str = ""
    registers: dict[str, RegisterMapping] = Field(
        default_factory=dict, description="template profiles: where each field sits"
    )


class FailSafe(_Section):
    """What the controller does when it cannot see the grid connection."""

    meter_max_age_s: float = Field(
        default=3.0, gt=0, le=60, description="older grid readings count as unknown"
    )
    safe_import_kw: float | None = Field(
        default=None,
        ge=0,
        description="import budget while the grid meter is unknown; default: static caps",
    )
    recovery_kw_per_s: float = Field(default=50.0, gt=0)


class ControlSection(_Section):
    cycle_s: float = Field(default=1.0, ge=0.1, le=10)
    safety_margin_kw: float = Field(default=0.0, ge=0)
    margin_floor_kw: float | None = Field(
        default=None,
        ge=0,
        description="with it, the margin adapts to the site's measured load rises, between "
        "this floor and safety_margin_kw",
    )
    strategy: Literal["static", "fair"] = Field(
        default="fair",
        description="fair: measured budget shared max-min fairly; static: fixed caps only",
    )
    charger_delay_s: float = Field(
        default=5.0,
        ge=0,
        le=30,
        description="how long chargers take to follow a new limit; raises wait for cuts",
    )
    defer_to_cheaper_hours: bool = Field(
        default=True,
        description="hold back cars that the site's history says stay long enough to charge "
        "in a cheaper tariff period (never a car that might leave short)",
    )
    state_file: Path | None = Field(
        default=Path("/var/lib/edge-agent/control-state.json"),
        description="what the controller has learnt (stays, load history), kept across restarts",
    )
    static_reserve_kw: float = Field(
        default=0.0,
        ge=0,
        description="highest non-controllable site load; the static caps leave room for it",
    )
    failsafe: FailSafe = FailSafe()


class BatterySection(_Section):
    """The battery's rating and the state-of-charge window the controller keeps it in."""

    max_charge_kw: float = Field(gt=0)
    max_discharge_kw: float = Field(gt=0)
    soc_min: float = Field(default=0.1, ge=0, le=1, description="fraction of capacity")
    soc_max: float = Field(default=0.95, ge=0, le=1)
    capacity_kwh: float | None = Field(
        default=None, gt=0, description="usable capacity; with it the time-of-use planner runs"
    )
    charge_efficiency: float = Field(default=0.95, gt=0, le=1)
    discharge_efficiency: float = Field(default=0.95, gt=0, le=1)
    # Cell temperatures (from the BMS, where the profile reads them) outside which the
    # controller neither charges nor discharges: the LFP datasheet figures unless told.
    charge_min_temp_c: float = Field(default=0.0, ge=-40, le=80)
    charge_max_temp_c: float = Field(default=50.0, ge=-40, le=80)
    discharge_min_temp_c: float = Field(default=-10.0, ge=-40, le=80)
    discharge_max_temp_c: float = Field(default=50.0, ge=-40, le=80)

    @model_validator(mode="after")
    def _window(self) -> BatterySection:
        if self.soc_min >= self.soc_max:
            raise ValueError(f"soc_min {self.soc_min} must be below soc_max {self.soc_max}")
        for kind in ("charge", "discharge"):
            low = getattr(self, f"{kind}_min_temp_c")
            high = getattr(self, f"{kind}_max_temp_c")
            if low >= high:
                raise ValueError(f"{kind}_min_temp_c {low} must be below {kind}_max_temp_c {high}")
        return self


class ChargerConnector(_Section):
    """One connector of a charger: the configured device that reads and limits it."""

    id: int = Field(ge=1)
    device: Identifier
    max_kw: float = Field(gt=0)
    weight: float = Field(
        default=1.0, gt=0, le=100, description="priority: shares of the power when it is short"
    )


class Charger(_Section):
    """A charging station whose connectors share its power (`max_kw`)."""

    id: Identifier
    kind: Literal["dc", "ac"]
    max_kw: float = Field(gt=0)
    phases: Literal[1, 3] = 3
    phase: Literal["L1", "L2", "L3"] | None = Field(
        default=None, description="1-phase chargers: the phase it is wired to"
    )
    min_a: float | None = Field(default=None, gt=0, description="AC: a car gets this or nothing")
    max_a: float | None = Field(default=None, gt=0, description="AC: most current per phase")
    connectors: list[ChargerConnector] = Field(min_length=1)

    @model_validator(mode="after")
    def _wiring(self) -> Charger:
        if self.phases == 1 and self.phase is None:
            raise ValueError("a 1-phase charger needs phase = L1, L2 or L3")
        if self.phases == 3 and self.phase is not None:
            raise ValueError("phase is only for 1-phase chargers")
        if self.kind == "ac" and (self.min_a is None or self.max_a is None):
            raise ValueError("an AC charger needs min_a and max_a")
        if self.min_a is not None and self.max_a is not None and self.min_a > self.max_a:
            raise ValueError(f"min_a {self.min_a} is above max_a {self.max_a}")
        if self.kind == "dc" and (self.min_a is not None or self.max_a is not None):
            raise ValueError("min_a and max_a are for AC chargers")
        return self


_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


def minutes_of_day(hhmm: str) -> int:
    """'07:30' -> 450; '24:00' -> 1440 (the end of the day)."""
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class TariffPeriod(_Section):
    """Import price for a stretch of local wall-clock time, `end` exclusive."""

    name: str = Field(min_length=1)
    start: str
    end: str
    price: float = Field(ge=0, description="per kWh imported")

    @field_validator("start", "end")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        if not _HHMM.match(value):
            raise ValueError("must be a time of day 'HH:MM' (00:00 to 24:00)")
        return value

    @property
    def start_minute(self) -> int:
        return minutes_of_day(self.start)

    @property
    def end_minute(self) -> int:
        return minutes_of_day(self.end)


class TariffSection(_Section):
    currency: str = Field(default="EUR", min_length=1, max_length=8)
    export_price: float = Field(default=0.0, ge=0)
    timezone: str = Field(default="UTC", description="IANA zone the periods are local to")
    periods: list[TariffPeriod] = []


class MqttSection(_Section):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: bool = False
    topic_prefix: str = Field(default="edge-agent", pattern=r"^[^#+]+$")
    client_id: str | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    spool_dir: Path = Path("/var/lib/edge-agent/spool")
    spool_max_mb: float = Field(default=256.0, gt=0)


class PrometheusSection(_Section):
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535, description="0 = any free port")


class OcppSection(_Section):
    enabled: bool = False
    bind: str = "0.0.0.0"
    port: int = Field(default=9000, ge=1, le=65535)
    versions: list[Literal["1.6", "2.0.1"]] = ["1.6", "2.0.1"]
    heartbeat_interval_s: int = Field(default=300, ge=10, le=86400)


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class LoggingSection(_Section):
    level: LogLevel = LogLevel.INFO
    timestamps: Literal["auto", "always", "never"] = Field(
        default="auto", description="auto: none under systemd, where journald adds its own"
    )


class DriversSection(_Section):
    """Where the site keeps its own device profiles, next to the shipped ones."""

    profiles_dir: Path | None = Field(
        default=None, description="e.g. /etc/edge-agent/profiles; its files win over shipped ones"
    )


class AgentConfig(BaseSettings):
    """The whole site. Built by `agent.config_loader.load_config`, never directly."""

    model_config = SettingsConfigDict(
        extra="forbid",
        frozen=True,
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        case_sensitive=False,
    )

    site: SiteSection
    buses: list[Bus] = []
    devices: list[Device] = []
    chargers: list[Charger] = []
    battery: BatterySection | None = None
    drivers: DriversSection = DriversSection()
    control: ControlSection = ControlSection()
    tariff: TariffSection = TariffSection()
    mqtt: MqttSection = MqttSection()
    prometheus: PrometheusSection = PrometheusSection()
    ocpp: OcppSection = OcppSection()
    logging: LoggingSection = LoggingSection()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment wins over the file (passed in as init values); nothing else counts."""
        return (env_settings, init_settings)

    def devices_on(self, bus_name: str) -> list[Device]:
        return [device for device in self.devices if device.bus == bus_name]

    @property
    def grid_meter(self) -> Device | None:
        for device in self.devices:
            if device.id == self.site.grid_meter:
                return device
        return None
