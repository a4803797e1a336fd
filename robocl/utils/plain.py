"""Config nodes as plain data: nested mappings and sequences (an OmegaConf DictConfig/ListConfig, read
through its Mapping/Sequence interface, so without importing omegaconf) as dicts and lists."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def plain(value: Any) -> Any:
    """`value` with every mapping a dict and every sequence (but str/bytes) a list, recursively."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value
