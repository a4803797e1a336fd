"""Record what a robot saw and did as a ROS bag (rosbags), for offline adaptation evaluation.

Topics (defaults; `robocl-eval` reads the same names by default):

| topic | type | content |
| --- | --- | --- |
| `/odom` | `nav_msgs/Odometry` | state per step: pose in `odom`, twist in `base_link` (REP-103) |
| `/cmd_vel` | `geometry_msgs/TwistStamped` | the command issued at that step (`linear.x` = v, `angular.z` = w) |
| `/robocl/regime` | `std_msgs/String` | the regime label, published at the start and whenever it changes |
| `/robocl/episode` | `std_msgs/String` | one JSON message at the start: method, seed, course, dt, robot |

`robocl-run ... record=DIR` writes one ROS 2 bag per episode: `DIR/<method>_<course>_s<seed>/`
(a rosbag2 directory: `metadata.yaml` + one `.mcap` file). Step k is stamped `t0 + k*dt`, where t0
is the wall-clock time the episode was recorded; the command of step k has the same stamp as the
state it was computed from.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from robocl.offline import rosmsg

STATE_TOPIC = "/odom"
COMMAND_TOPIC = "/cmd_vel"
REGIME_TOPIC = "/robocl/regime"
EPISODE_TOPIC = "/robocl/episode"
FORMATS = ("mcap", "sqlite3", "ros1")


class BagRecorder:
    """Streaming writer: `state`, `command`, `regime` messages in time order; `close()` finishes the bag.

    fmt: `mcap` or `sqlite3` (ROS 2 bag directory at `path`) or `ros1` (a `.bag` file at `path`).
    """

    def __init__(self, path: Path | str, fmt: str = "mcap", stamped_commands: bool = True,
                 state_topic: str = STATE_TOPIC, command_topic: str = COMMAND_TOPIC,
                 regime_topic: str = REGIME_TOPIC) -> None:
        from rosbags.typesys import Stores, get_typestore

        if fmt not in FORMATS:
            raise ValueError(f"fmt={fmt!r}: accepted {', '.join(FORMATS)}")
        self.path = Path(path)
        self.fmt = fmt
        if fmt == "ros1":
            from rosbags.rosbag1 import Writer as Writer1

            self.ts = get_typestore(Stores.ROS1_NOETIC)
            self.writer = Writer1(self.path)
            self._serialize = self.ts.serialize_ros1
        else:
            from rosbags.rosbag2 import StoragePlugin
            from rosbags.rosbag2 import Writer as Writer2

            self.ts = get_typestore(Stores.ROS2_HUMBLE)
            plugin = StoragePlugin.MCAP if fmt == "mcap" else StoragePlugin.SQLITE3
            self.writer = Writer2(self.path, version=9, storage_plugin=plugin)
            self._serialize = self.ts.serialize_cdr
        self.msgs = rosmsg.MessageFactory(self.ts)
        self.stamped = stamped_commands
        self.writer.open()
        self._conn = {
            "state": self.writer.add_connection(state_topic, rosmsg.ODOMETRY, typestore=self.ts),
            "command": self.writer.add_connection(
                command_topic, rosmsg.TWIST_STAMPED if stamped_commands else rosmsg.TWIST, typestore=self.ts),
            "regime": self.writer.add_connection(regime_topic, rosmsg.STRING, typestore=self.ts),
        }
        self._episode_conn = None
        self._last_regime: str | None = None

    def _write(self, key: str, t_ns: int, msg: Any, msgtype: str) -> None:
        self.writer.write(self._conn[key] if key in self._conn else key, int(t_ns), self._serialize(msg, msgtype))

    def state(self, t_ns: int, state: np.ndarray) -> None:
        self._write("state", t_ns, self.msgs.odometry(t_ns, state), rosmsg.ODOMETRY)

    def command(self, t_ns: int, command: np.ndarray) -> None:
        if self.stamped:
            self._write("command", t_ns, self.msgs.twist_stamped(t_ns, command), rosmsg.TWIST_STAMPED)
        else:
            self._write("command", t_ns, self.msgs.twist(command), rosmsg.TWIST)

    def regime(self, t_ns: int, label: str, only_changes: bool = True) -> None:
        if only_changes and label == self._last_regime:
            return
        self._last_regime = label
        self._write("regime", t_ns, self.msgs.string(label), rosmsg.STRING)

    def episode(self, t_ns: int, meta: dict[str, Any]) -> None:
        if self._episode_conn is None:
            self._episode_conn = self.writer.add_connection(EPISODE_TOPIC, rosmsg.STRING, typestore=self.ts)
        self.writer.write(self._episode_conn, int(t_ns),
                          self._serialize(self.msgs.string(json.dumps(meta, sort_keys=True)), rosmsg.STRING))

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> BagRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_episode(path: Path | str, states: np.ndarray, actions: np.ndarray, regimes: list[str] | None,
                  dt: float, meta: dict[str, Any] | None = None, t0_ns: int | None = None,
                  fmt: str = "mcap") -> Path:
    """One episode: T actions, T+1 states (the last is the state after the last step), T regime labels."""
    states, actions = np.asarray(states, dtype=float), np.asarray(actions, dtype=float)
    if len(states) != len(actions) + 1:
        raise ValueError(f"need T+1 states for T actions (got {len(states)} and {len(actions)})")
    t0 = time.time_ns() // 1_000_000 * 1_000_000 if t0_ns is None else int(t0_ns)
    dt_ns = int(round(dt * 1e9))
    with BagRecorder(path, fmt) as rec:
        if meta is not None:
            rec.episode(t0, {**meta, "dt": dt})
        for k in range(len(actions)):
            t = t0 + k * dt_ns
            rec.state(t, states[k])
            if regimes is not None:
                rec.regime(t, regimes[k])
            rec.command(t, actions[k])
        rec.state(t0 + len(actions) * dt_ns, states[-1])
    return Path(path)


def episode_dir_name(method: str, course: str, seed: int) -> str:
    return f"{method}_{course}_s{seed}"


def check_record_target(root: Path | str, names: list[str]) -> None:
    """Raise ValueError (with the one line to show) if the episodes cannot be recorded under `root`."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"record={root}: exists and is not a directory (record= names a folder of bags)")
    for name in names:
        if (root / name).exists():
            raise ValueError(f"record={root}: {root / name} exists already; choose a new folder")
