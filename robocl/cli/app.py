"""What every robocl command shares: Hydra config composition, run directories, exit codes.

Exit codes (DESIGN.md): 0 success, 2 usage/config error (one clear line, no traceback),
1 runtime failure (run directory kept, finished work saved, traceback in error.log).
"""

from __future__ import annotations

import inspect
import os
import sys
import traceback
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from robocl.errors import UsageError  # noqa: F401  (re-exported: the CLI maps it to exit 2)

CONFIG_PACKAGE = "robocl_configs"


def config_groups() -> dict[str, list[str]]:
    """Config group -> available option names, read from the installed configs package."""
    root = resources.files(CONFIG_PACKAGE)
    groups: dict[str, list[str]] = {}
    for entry in root.iterdir():
        if entry.is_dir() and not entry.name.startswith(("_", ".")):
            groups[entry.name] = sorted(p.name[:-5] for p in entry.iterdir() if p.name.endswith(".yaml"))
    return groups


def _check_group_choices(overrides: list[str]) -> None:
    groups = config_groups()
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.lstrip("+~")
        if sep and key in groups and value not in groups[key]:
            accepted = ", ".join(groups[key])
            raise UsageError(f"{key}={value}: no such {key} config; accepted: {accepted}")


def is_robot_file(value: str) -> bool:
    return value.endswith((".yaml", ".yml")) or "/" in value


def split_robot_file(overrides: list[str]) -> tuple[list[str], DictConfig | None]:
    """`robot=PATH.yaml` (a user's robot spec, not a config-group option): the remaining overrides and the
    loaded spec, with any `robot.KEY=VALUE` overrides applied to it."""
    chosen = [a for a in overrides if a.partition("=")[0] == "robot" and is_robot_file(a.partition("=")[2])]
    if not chosen:
        return overrides, None
    path = Path(chosen[-1].partition("=")[2]).expanduser()
    if not path.is_file():
        raise UsageError(f"robot={path}: no such robot file (a YAML robot spec; see configs/robot/diff_drive.yaml)")
    try:
        node = OmegaConf.load(path)
    except Exception as exc:
        raise UsageError(f"robot={path}: not a readable YAML file ({str(exc).splitlines()[0]})") from None
    if not isinstance(node, DictConfig):
        raise UsageError(f"robot={path}: expected a mapping of robot keys (name, codec, dt, state, command, ...)")
    rest = [a for a in overrides if a.partition("=")[0] != "robot"]
    tweaks = [a[len("robot."):] for a in rest if a.startswith("robot.")]
    if tweaks:
        try:
            node = OmegaConf.merge(node, OmegaConf.from_dotlist(tweaks))
        except Exception as exc:
            raise UsageError(f"robot overrides: {str(exc).splitlines()[0]}") from None
    from robocl.robots.spec import spec_from_config

    spec = spec_from_config(node)  # one line for a bad key, before anything else reads the file
    node.state, node.command = list(spec.state), list(spec.command)  # the codec's default names, made explicit
    node.setdefault("source", str(path.resolve()))
    return [a for a in rest if not a.startswith("robot.")], node


def compose(overrides: list[str], config_name: str = "config") -> tuple[DictConfig, Path]:
    """Compose the config with Hydra; returns (config without the hydra node, run dir)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    overrides, robot_file = split_robot_file(overrides)
    _check_group_choices(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=overrides, return_hydra_config=True)
    except Exception as exc:  # hydra/omegaconf raise many types; all are usage errors here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(_unknown_key(overrides, config_name, exc) or first) from None
    try:
        run_dir = Path(str(cfg.hydra.run.dir))
    except Exception as exc:
        raise UsageError(f"hydra.run.dir: {exc}") from None
    resume = cfg.get("resume")
    if isinstance(resume, str) and resume:  # resume=DIR: that run directory, resumed
        run_dir = Path(resume).expanduser()
        with open_dict(cfg):
            cfg.resume = True
    elif resume not in (None, True, False):
        raise UsageError(f"resume={resume}: accepted true, false or the run directory to resume")
    with open_dict(cfg):
        del cfg["hydra"]
        if robot_file is not None:
            cfg["robot"] = robot_file
    try:
        OmegaConf.resolve(cfg)
    except Exception as exc:
        raise UsageError(str(exc).strip().splitlines()[0]) from None
    return cfg, run_dir


def _unknown_key(overrides: list[str], config_name: str, exc: Exception) -> str | None:
    """`KEY=VALUE` with a KEY the config does not have: the line naming it and the keys that are there."""
    import difflib
    import re

    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    override = re.match(r"Could not override '([^']+)'", str(exc))
    missing = re.search(r"full_key: (\S+)", str(exc.__cause__ or ""))
    if not override or not missing:
        return None
    key = override.group(1)
    item = next((o for o in overrides if o.partition("=")[0] == key), key)
    parent, _, leaf = missing.group(1).rpartition(".")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONFIG_PACKAGE, version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=[o for o in overrides if o != item])
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except Exception:
        return None
    if not isinstance(node, DictConfig):
        return f"{item}: no such key ({parent} is a single value, not a group of keys)"
    keys = sorted(str(k) for k in node.keys() if k != "hydra")
    close = difflib.get_close_matches(leaf, keys, n=1)
    prefix = f"{parent}." if parent else ""
    hint = f"did you mean {prefix}{close[0]}? " if close else ""
    return f"{item}: no such key; {hint}{parent or 'the config'} has {', '.join(keys)}"


def prepare_run_dir(run_dir: Path, cfg: DictConfig, overrides: list[str]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    meta = run_dir / ".hydra"
    meta.mkdir(exist_ok=True)
    from robocl.utils.io import atomic_write_text

    atomic_write_text(meta / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(meta / "overrides.yaml", OmegaConf.to_yaml(OmegaConf.create(list(overrides))))
    return run_dir


def print_help(prog: str, description: str) -> None:
    groups = config_groups()
    lines = [f"usage: {prog} [KEY=VALUE ...]", "", description, "", "Config groups (GROUP=OPTION):"]
    lines += [f"  {g}: {', '.join(opts)}" for g, opts in sorted(groups.items())]
    lines += ["", "Any key can be overridden (e.g. planner.horizon=8 seeds=[0,1,2] hydra.run.dir=DIR).",
              "Exit codes: 0 ok, 2 bad usage/config, 1 runtime failure."]
    try:
        print("\n".join(lines))
        sys.stdout.flush()
    except BrokenPipeError:  # `robocl-run --help | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run_app(prog: str, description: str, body: Callable[[DictConfig, Path], int | None],
            config_name: str = "config", argv: list[str] | None = None,
            validate: Callable[..., None] | None = None) -> int:
    """Parse overrides, compose, validate, create the run dir and call `body`, mapping errors to exit codes.

    `validate(cfg)` (or `validate(cfg, run_dir)`: a resumed run's checkpoint or ledger) runs before anything
    is created or printed, so a typo costs nothing and a failed command leaves an earlier run's files as they are.
    """
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print_help(prog, description)
        return 0
    bad = [a for a in args if "=" not in a and not a.startswith("~")]  # ~KEY: Hydra delete
    run_dir: Path | None = None
    try:
        if bad:
            raise UsageError(f"unexpected argument {bad[0]!r}; arguments are KEY=VALUE overrides (see --help)")
        cfg, run_dir = compose(args, config_name)
        if validate is not None:
            validate(*(cfg, run_dir)[:len(inspect.signature(validate).parameters)])
        threads = int(OmegaConf.select(cfg, "runtime.threads", default=0) or 0)
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        prepare_run_dir(run_dir, cfg, args)
        code = body(cfg, run_dir)
        return int(code or 0)
    except UsageError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished runs are kept in {run_dir}", file=sys.stderr)
        return 130
    except Exception as exc:  # runtime failure: keep the run dir, log the traceback there
        where = ""
        if run_dir is not None:
            from robocl.utils.io import atomic_write_text

            atomic_write_text(run_dir / "error.log", traceback.format_exc())
            where = f" (traceback in {run_dir / 'error.log'})"
        print(f"{prog}: failed: {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        if os.environ.get("ROBOCL_DEBUG"):
            traceback.print_exc()
        return 1
