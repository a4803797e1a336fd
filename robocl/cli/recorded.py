"""The `data.*` keys that every command reading recorded robot data shares (robocl-eval, robocl-train):
one mapping from config to topics, columns and time alignment, and one check of the episodes."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from robocl import config_check as check
from robocl.errors import UsageError


def mapping_from(cfg: DictConfig):
    from robocl.offline.readers import Mapping

    d = cfg.data
    period = check.number(cfg, "data.period", lo=0, lo_open=True)
    stamp = str(check.get(cfg, "data.stamp"))
    if stamp not in ("header", "log"):
        raise UsageError(f"data.stamp={stamp}: accepted header, log")
    cols = d.columns
    state_cols, command_cols = list(cols.state), list(cols.command)
    if len(state_cols) != 6 or len(command_cols) != 2:
        raise UsageError("data.columns.state must name 6 columns (x, y, yaw, v_forward, v_lateral, yaw_rate) and "
                         "data.columns.command 2 (v, w)")
    return Mapping(state_topic=str(d.state_topic), command_topic=str(d.command_topic),
                   regime_topic=str(d.regime_topic) if d.regime_topic else None, stamp=stamp, period=period,
                   max_state_gap=check.number(cfg, "data.max_state_gap", lo=0, lo_open=True),
                   command_timeout=check.number(cfg, "data.command_timeout", lo=0, lo_open=True),
                   time_column=str(cols.time), state_columns=[str(c) for c in state_cols],
                   command_columns=[str(c) for c in command_cols],
                   regime_column=str(cols.regime) if cols.regime else None, format=str(d.format))


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
