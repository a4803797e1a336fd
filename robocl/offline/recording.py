"""Record what a robot saw and did as a ROS bag (rosbags), for offline adaptation evaluation.

Topics (defaults; `robocl-eval` reads the same names by default):

| topic | type | content |
| --- | --- | --- |
| `/odom` | `nav_msgs/Odometry` | state per step: pose in `odom`, twist in `base_link` (REP-103) |
| `/cmd_vel` | `geometry_msgs/TwistStamped` | the command issued at that step (UGV: `linear.x` = v, `angular.z` = w) |
| `/robocl/regime` | `std_msgs/String` | the regime label, published at the start and whenever it changes |
| `/robocl/episode` | `std_msgs/String` | one JSON message at the start: method, seed, course, dt, robot |

`robocl-run ... record=DIR` (experiments ugv_continual and quad_continual: `record_target`,
`record_episode`) writes one ROS 2 bag per episode: `DIR/<method>_<course>_s<seed>/`
(a rosbag2 directory: `metadata.yaml` + one `.mcap` file). Step k is stamped `t0 + k*dt`, where t0
is the wall-clock time the episode was recorded; the command of step k has the same stamp as the
state it was computed from.

Odometry comes from the state through the ROS node's own mapping (robocl.robots.odometry), for the
robot's layout: `planar` (UGV) or `quadrotor`, whose command is a world-frame velocity setpoint
(`linear.x/y/z`, `angular.z` = yaw rate, header frame `odom`: mavros `setpoint_velocity`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robocl.errors import UsageError
from robocl.offline import rosmsg
from robocl.robots.odometry import OdomFields

if TYPE_CHECKING:
    from omegaconf import DictConfig

STATE_TOPIC = "/odom"
COMMAND_TOPIC = "/cmd_vel"
REGIME_TOPIC = "/robocl/regime"
EPISODE_TOPIC = "/robocl/episode"
FORMATS = ("mcap", "sqlite3", "ros1")


class BagRecorder:
    """Streaming writer: `state`, `command`, `regime` messages in time order; `close()` finishes the bag.

    fmt: `mcap` or `sqlite3` (ROS 2 bag directory at `path`) or `ros1` (a `.bag` file at `path`).
    layout: the robot's state layout, `planar` (UGV, 6 states / 2 commands) or `quadrotor` (12 / 4).
    """

    def __init__(self, path: Path | str, fmt: str = "mcap", stamped_commands: bool = True,
                 state_topic: str = STATE_TOPIC, command_topic: str = COMMAND_TOPIC,
                 regime_topic: str = REGIME_TOPIC, layout: str = "planar", world_frame: str = "odom",
                 body_frame: str = "base_link") -> None:
        from rosbags.typesys import Stores, get_typestore

        if fmt not in FORMATS:
            raise ValueError(f"fmt={fmt!r}: accepted {', '.join(FORMATS)}")
        if layout not in rosmsg.BAG_LAYOUTS:
            raise ValueError(f"layout={layout!r}: ROS bags are written for {', '.join(rosmsg.BAG_LAYOUTS)}")
        self.path = Path(path)
        self.fmt = fmt
        self.layout = layout
        self.world_frame, self.body_frame = world_frame, body_frame
        # a UGV's (v, w) is body-frame; a quadrotor's velocity setpoint is in the world frame (mavros)
        self.command_frame = body_frame if layout == "planar" else world_frame
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
        msg = self.msgs.odometry(t_ns, state, self.world_frame, self.body_frame, layout=self.layout)
        self._write("state", t_ns, msg, rosmsg.ODOMETRY)

    def odometry(self, t_ns: int, fields: OdomFields) -> None:
        """A raw Odometry on the state topic (e.g. a tilted robot's, as a driver publishes it)."""
        self._write("state", t_ns, self.msgs.odometry_from_fields(t_ns, fields, self.world_frame, self.body_frame),
                    rosmsg.ODOMETRY)

    def command(self, t_ns: int, command: np.ndarray) -> None:
        if self.stamped:
            msg = self.msgs.twist_stamped(t_ns, command, self.command_frame, layout=self.layout)
            self._write("command", t_ns, msg, rosmsg.TWIST_STAMPED)
        else:
            self._write("command", t_ns, self.msgs.twist(command, layout=self.layout), rosmsg.TWIST)

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
                  fmt: str = "mcap", layout: str = "planar") -> Path:
    """One episode: T actions, T+1 states (the last is the state after the last step), T regime labels."""
    states, actions = np.asarray(states, dtype=float), np.asarray(actions, dtype=float)
    if len(states) != len(actions) + 1:
        raise ValueError(f"need T+1 states for T actions (got {len(states)} and {len(actions)})")
    t0 = time.time_ns() // 1_000_000 * 1_000_000 if t0_ns is None else int(t0_ns)
    dt_ns = int(round(dt * 1e9))
    with BagRecorder(path, fmt, layout=layout) as rec:
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


def record_target(cfg: DictConfig, names: list[str]) -> Path | None:
    """`record=DIR` of a simulation experiment, checked before any work: None without record=, else the
    folder the episodes `names` (episode_dir_name) will be written to. A bad target is one UsageError line."""
    target = cfg.get("record")
    if target is None:
        return None
    layout = str(cfg.robot.get("codec") or "planar")
    if layout not in rosmsg.BAG_LAYOUTS:
        raise UsageError(f"record={target}: robot.codec {layout} has no ROS message mapping; record= writes "
                         f"bags for codec {' and '.join(rosmsg.BAG_LAYOUTS)}")
    try:
        check_record_target(str(target), names)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Path(str(target)).expanduser()


def record_episode(root: Path, tags: dict[str, Any], states: np.ndarray, actions: np.ndarray, regimes: list[str],
                   cfg: DictConfig, **meta: Any) -> Path:
    """One finished episode as `root/<method>_<task>_s<seed>/` (tags: method, task, seed), stamped at
    robot.dt, in the robot's layout; `meta` goes into the /robocl/episode message with the tags."""
    name = episode_dir_name(tags["method"], tags["task"], tags["seed"])
    return write_episode(root / name, states, actions, list(regimes), float(cfg.robot.dt),
                         meta={**tags, "robot": str(cfg.robot.name), "codec": str(cfg.robot.codec), **meta},
                         layout=str(cfg.robot.codec))
