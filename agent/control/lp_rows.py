"""Linear-programme rows in compressed sparse row form, appended one at a time, for HiGHS.

Shared by the battery planner's LP (`battery_lp.py`) and the simulator's perfect-foresight
yardstick (`hil/yardstick_lp.py`), which differ in their columns, not in how rows are kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import highspy
import numpy as np


@dataclass(slots=True)
class SparseRows:
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    index: list[int] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add(self, lower: float, upper: float, terms: Iterable[tuple[int, float]]) -> None:
        """One row: lower <= sum(coef x col) <= upper."""
        self.starts.append(len(self.index))
        for col, coef in terms:
            self.index.append(col)
            self.value.append(coef)
        self.lower.append(lower)
        self.upper.append(upper)

    def load_into(self, highs: highspy.Highs) -> None:
        """Add every row to a HiGHS model that already has the columns."""
        highs.addRows(
            len(self.lower),
            np.array(self.lower),
            np.array(self.upper),
            len(self.index),
            np.array(self.starts, dtype=np.int32),
            np.array(self.index, dtype=np.int32),
            np.array(self.value, dtype=np.float64),
        )
