"""The `data.*` keys that every command reading recorded robot data shares (robocl-eval, robocl-train):
one mapping from config to topics, columns and time alignment, and one check of the episodes."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robocl.build import checks as check
from robocl.errors import UsageError


def mapping_from(cfg: DictConfig):
    """The readers' Mapping from `data.*`, for the robot's state layout (`robot.codec`): bags are decoded
    with that layout's Odometry/Twist mapping, CSV columns must name one entry per robot state/command."""
    from robocl.offline.readers import Mapping
    from robocl.robots.spec import spec_from_config

    d = cfg.data
    period = check.number(cfg, "data.period", lo=0, lo_open=True)
    stamp = str(check.get(cfg, "data.stamp"))
    if stamp not in ("header", "log"):
        raise UsageError(f"data.stamp={stamp}: accepted header, log")
    spec = spec_from_config(cfg.robot)
    cols = d.columns
    names = {}
    for key, robot_names in (("state", spec.state), ("command", spec.command)):
        value = OmegaConf.select(cfg, f"data.columns.{key}")
        listed = list(value) if OmegaConf.is_list(value) or isinstance(value, list | tuple) else None
        if listed is None or len(listed) != len(robot_names) or not all(isinstance(c, str) and c for c in listed):
            shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
            raise UsageError(f"data.columns.{key}={shown}: must name {len(robot_names)} columns, one per "
                             f"robot.{key} entry of robot={spec.name} ({', '.join(robot_names)})")
        names[key] = [str(c) for c in listed]
    return Mapping(layout=spec.codec, state_topic=str(d.state_topic), command_topic=str(d.command_topic),
                   regime_topic=str(d.regime_topic) if d.regime_topic else None, stamp=stamp, period=period,
                   max_state_gap=check.number(cfg, "data.max_state_gap", lo=0, lo_open=True),
                   command_timeout=check.number(cfg, "data.command_timeout", lo=0, lo_open=True),
                   time_column=str(cols.time), state_columns=names["state"], command_columns=names["command"],
                   regime_column=str(cols.regime) if cols.regime else None, format=str(d.format),
                   angle_dims=spec.angle_dims)


def check_sources(cfg: DictConfig):
    from robocl.offline.readers import DataError, discover, open_source

    path = OmegaConf.select(cfg, "data.path")
    if not path:
        raise UsageError("data: missing; pass data=PATH (a .bag, .mcap, .db3, rosbag2 folder, .csv, "
                         "or a folder of them)")
    mapping = mapping_from(cfg)
    try:
        episodes = discover(str(path), mapping.format)
        infos = [open_source(ep, mapping).check() for ep in episodes]
    except DataError as exc:
        raise UsageError(str(exc)) from None
    return mapping, episodes, infos
