"""The import rules, checked on the source: no import cycles between modules (module-level imports,
`TYPE_CHECKING` blocks excluded) in robocl, robocl_ros and robocl_envs, and nothing outside
`robocl/cli` imports `robocl.cli` (at any level): the command line is the outermost layer. Models and
controllers are assembled by `robocl.build` (config -> objects), which only the wiring imports: the commands,
the experiment runners and the ROS node's set-up; it is also the only place besides them that reads configs
through omegaconf (with the offline recorder's run wiring). The simulation episodes (`robocl.sim`) import none
of those layers. Every `module:function` a config names loads. Lightning is imported only by the offline
trainers; a private `_name` is used only in the module defining it. Building an object from a config (a
factory, `robocl.build`, the ROS node's `build_controller`) never reaches a step that simulates or trains."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"robocl": ROOT / "robocl", "robocl_ros": ROOT / "ros_bridge", "robocl_envs": ROOT / "envs"}


def modules() -> dict[str, Path]:
    out = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return set()


def module_level_imports(tree: ast.Module) -> set[str]:
    """Imports that run when the module is imported (not inside functions, not under TYPE_CHECKING)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            found.update(imported(node))
            for field in ("body", "orelse", "finalbody"):
                visit(getattr(node, field, []) if not isinstance(node, ast.ClassDef) or field == "body" else [])
            for handler in getattr(node, "handlers", []):
                visit(handler.body)

    visit(tree.body)
    return found


def test_no_import_cycles():
    mods = modules()
    graph = {m: {i for i in module_level_imports(ast.parse(p.read_text())) if i in mods and i != m}
             for m, p in mods.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def dfs(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                dfs(n, [*stack, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            dfs(m, [m])
    assert len(mods) > 100 and not cycles, cycles[:5]


def test_nothing_outside_the_cli_imports_it():
    offenders = []
    for name, path in modules().items():
        if name.startswith("robocl.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if any(i == "robocl.cli" or i.startswith("robocl.cli.") for i in imported(node)):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def imports_anywhere(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, at any level (functions included)."""
    return [(node.lineno, i) for node in ast.walk(ast.parse(path.read_text())) for i in sorted(imported(node))]


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_ros_node_builds_through_robocl_build_not_the_experiments():
    """robocl_ros assembles its controller with robocl.build; the experiment runners are not its layer."""
    offenders = [f"{path.relative_to(ROOT)}:{line} {i}" for name, path in modules().items()
                 if under(name, "robocl_ros") for line, i in imports_anywhere(path) if under(i, "robocl.experiments")]
    assert not offenders, offenders


def test_the_build_layer_imports_no_layer_above_it():
    """robocl.build is what commands, the ROS node and the runners build with, so it imports none of them."""
    above = ("robocl.cli", "robocl_ros", "robocl.experiments")
    offenders = [f"{path.relative_to(ROOT)}:{line} {i}" for name, path in modules().items()
                 if under(name, "robocl.build") for line, i in imports_anywhere(path)
                 if any(under(i, a) for a in above)]
    assert "robocl.build.pretrained" in modules() and not offenders, offenders


# The wiring: where a config (an omegaconf node) becomes objects and runs. Everything else takes plain values,
# or reads a config node through its Mapping interface (a component's from_config).
WIRING_PACKAGES = ("robocl.build", "robocl.experiments", "robocl.cli")
ROS_WIRING = {"robocl_ros.node", "robocl_ros.params", "robocl_ros.simnode"}
OMEGACONF_WIRING = ROS_WIRING | {"robocl.offline.recording"}  # the offline recorder's run set-up


def wiring(name: str, extra: set[str]) -> bool:
    return name in extra or any(under(name, p) for p in WIRING_PACKAGES)


def test_omegaconf_is_imported_only_by_the_wiring():
    """robocl.build, the runners, the commands, the ROS node's set-up and the offline recorder's run wiring read
    configs with omegaconf; results, loggers, robots, refiners, benchmarks' timing and the rest take plain values."""
    mods = modules()
    assert OMEGACONF_WIRING <= set(mods), OMEGACONF_WIRING - set(mods)
    offenders = [f"{path.relative_to(ROOT)}:{line} {i}" for name, path in mods.items()
                 if not wiring(name, OMEGACONF_WIRING) for line, i in imports_anywhere(path) if under(i, "omegaconf")]
    assert not offenders, offenders


def test_only_the_wiring_imports_the_build_layer():
    """Config -> object code lives in robocl.build; only the commands, the runners and the ROS node's set-up
    import it (`robocl.load_model` reaches it lazily through the public API map, not by an import)."""
    mods = modules()
    offenders = [f"{path.relative_to(ROOT)}:{line} {i}" for name, path in mods.items()
                 if not wiring(name, ROS_WIRING) for line, i in imports_anywhere(path) if under(i, "robocl.build")]
    gone = [m for m in ("robocl.factory", "robocl.methods", "robocl.config_check", "robocl.planning.factory")
            if m in mods]  # config -> object modules outside robocl.build
    assert {"robocl.build.factory", "robocl.build.methods", "robocl.build.checks", "robocl.build.planners"} <= set(mods)
    assert not offenders and not gone, (offenders, gone)


def test_the_simulation_episodes_import_no_wiring():
    """robocl.sim (exploration data, waypoint and tracking episodes) runs a given env and controller: it imports
    neither the commands, the runners nor the assembly layer, at any level."""
    above = ("robocl.cli", "robocl.experiments", "robocl.build", "robocl_ros")
    mods = modules()
    offenders = [f"{path.relative_to(ROOT)}:{line} {i}" for name, path in mods.items()
                 if under(name, "robocl.sim") for line, i in imports_anywhere(path) if any(under(i, a) for a in above)]
    assert {"robocl.sim.data", "robocl.sim.rollouts", "robocl.sim.tracking"} <= set(mods) and not offenders, offenders


CALLABLE_KEYS = ("factory", "codec_factory", "generator", "runner")


def named_callables(node, where: str):
    """(file:key, 'module:function') for every CALLABLE_KEYS string in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in CALLABLE_KEYS and isinstance(value, str) and "$" not in value:
                yield f"{where}:{key}", value
            else:
                yield from named_callables(value, where)
    elif isinstance(node, list):
        for item in node:
            yield from named_callables(item, where)


def test_every_module_function_a_config_names_loads():
    """`factory:`, `codec_factory:`, `refiner.data.generator` and `runner:` in configs/ name code by its path:
    each must load (a module moved without its config following would fail only when that config runs)."""
    import yaml

    from robocl.errors import UsageError
    from robocl.utils.imports import load_callable

    named = [item for path in sorted((ROOT / "configs").rglob("*.yaml"))
             for item in named_callables(yaml.safe_load(path.read_text()), str(path.relative_to(ROOT)))]
    broken = []
    for where, spec in named:
        try:
            load_callable(spec, where)
        except UsageError as exc:
            broken.append(str(exc))
    assert len(named) > 20 and not broken, broken


LIGHTNING = ("pytorch_lightning", "lightning", "lightning_fabric")
LIGHTNING_TRAINERS = {"robocl.utils.lightning", "robocl.dynamics.training", "robocl.continual.trainer",
                      "robocl.drag.train", "robocl.refiners.afm_train"}


def test_lightning_is_imported_only_by_the_trainers():
    """Lightning is the offline trainers' framework (set up once, in robocl.utils.lightning); no other module
    imports it, at any level."""
    mods = modules()
    assert LIGHTNING_TRAINERS <= set(mods), LIGHTNING_TRAINERS - set(mods)
    offenders = [f"{path.relative_to(ROOT)}:{line} {i}" for name, path in mods.items()
                 if name not in LIGHTNING_TRAINERS for line, i in imports_anywhere(path)
                 if any(under(i, lib) for lib in LIGHTNING)]
    assert not offenders, offenders


def private_names(tree: ast.Module) -> set[str]:
    """`_name`s a module defines on its objects: `self._x = ...` / `cls._x = ...`, methods and class attributes."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                targets = item.targets if isinstance(item, ast.Assign) else [getattr(item, "target", None)]
                names.update(t.id for t in targets if isinstance(t, ast.Name))
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def private_uses(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, name) of every `obj._name` (obj not self/cls) and getattr/setattr/hasattr(obj, "_name")."""
    uses = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))):
            uses.append((node.lineno, node.attr))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and node.args[1].value.startswith("_") and not node.args[1].value.startswith("__")):
            uses.append((node.lineno, node.args[1].value))
    return uses


def test_no_module_reads_another_modules_private_fields():
    """A `_name` that robocl defines on its objects (e.g. Controller._last_planned) is used only in the module
    that defines it; other modules go through a public attribute or method (Controller.last_planned)."""
    trees = {name: ast.parse(path.read_text()) for name, path in modules().items()}
    defined = {name: private_names(tree) for name, tree in trees.items()}
    assert "_last_planned" in defined["robocl.control"]
    offenders = [f"{modules()[name].relative_to(ROOT)}:{line} {attr} (defined in "
                 f"{', '.join(m for m, d in defined.items() if attr in d)})"
                 for name, tree in trees.items() for line, attr in private_uses(tree)
                 if attr not in defined[name] and any(attr in d for d in defined.values())]
    assert not offenders, offenders


def test_the_robots_control_path_does_not_import_lightning():
    """Strategies, planners and the controller run on the robot; Lightning is loaded only to train offline.
    (The AFM refiner integrates its flow with torchdyn, which imports Lightning itself.)"""
    import subprocess
    import sys

    code = ("import sys; import robocl.control, robocl.planning.mppi, robocl.dynamics.ensemble, robocl.continual.ewc, "
            "robocl.continual.si, robocl.continual.coreset, robocl.continual.multitask, robocl.continual.hypercrl, "
            "robocl.continual.online; print('pytorch_lightning' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", (proc.stdout, proc.stderr[-2000:])


# ---- factories only load (issue 31) ---------------------------------------------------------------
# Simulating and training happen in cache-filling steps, which the commands, the runners and the ROS node's
# set-up call explicitly (once, before they build or fan out). Nothing that builds an object from a config
# reaches them: no factory a config names (`factory:`, `codec_factory:`), no `from_config`, nothing in
# robocl.build besides the cache-filling steps themselves, not the ROS node's `build_controller`.
SIMULATES_OR_TRAINS = {
    "robocl.refiners.afm_train": {"ensure_checkpoint", "make_data", "train_net"},
    "robocl.refiners.afm_data": {"generate", "generate_quadrotor"},
    "robocl.dynamics.training": {"train_offline", "fit"},
    "robocl.sim.data": {"collect_exploration"},
    "robocl.drag.train": {"train_two_stage"},
    "robocl.drag.datagen": {"generate"},
    # the cache-filling steps of the assembly layer (simulate and train on a cache miss)
    "robocl.build.pretrained": {"pretrained_model", "simulator_pretrained_model"},
    "robocl.build.refiners": {"ensure_refiner"},
}
BUILDERS = {"robocl_ros.node": {"build_controller"}}  # builders outside robocl.build


def functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def import_bindings(nodes, mods: dict[str, Path]) -> dict[str, tuple[str, str | None]]:
    """Local name -> (module, function or None for a module) for the imports among `nodes`."""
    out: dict[str, tuple[str, str | None]] = {}
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out[a.asname or a.name] = (full, None) if full in mods else (node.module, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = (a.name, None)
    return out


def calls_graph() -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(module, function) -> the robocl functions it names (calls or hands on), resolved through imports
    at module level and inside the function, and the same module's functions; methods are not followed."""
    mods = modules()
    graph: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        local = functions(tree)
        top = import_bindings([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], mods)
        for fname, fn in local.items():
            bound = {**top, **import_bindings(ast.walk(fn), mods)}
            found: set[tuple[str, str]] = set()
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.update((node.module, a.name) for a in node.names)
                elif isinstance(node, ast.Name):
                    if node.id in bound and bound[node.id][1] is not None:
                        found.add(bound[node.id])  # type: ignore[arg-type]
                    elif node.id in local and node.id != fname:
                        found.add((name, node.id))
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    target = bound.get(node.value.id)
                    if target is not None and target[1] is None:
                        found.add((target[0], node.attr))
            graph[(name, fname)] = found
    return graph


def builders(graph) -> set[tuple[str, str]]:
    """Every function that builds an object from a config: the factories component configs name,
    `*from_config`, robocl.build's functions (the cache-filling steps excepted) and BUILDERS."""
    import yaml

    # a suite's `factory:` is a benchmark runner (robocl-bench's runner layer), not a component's factory
    named = {tuple(spec.split(":", 1)) for path in sorted((ROOT / "configs").rglob("*.yaml"))
             if path.parent.name != "suite"
             for where, spec in named_callables(yaml.safe_load(path.read_text()), "")
             if where.endswith(("factory", "codec_factory"))}
    out = {(m, f) for m, f in graph if f == "from_config" or f.endswith("_from_config")}
    out |= {(m, f) for m, f in graph if under(m, "robocl.build") and f not in SIMULATES_OR_TRAINS.get(m, ())}
    out |= {(m, f) for m, fs in BUILDERS.items() for f in fs}
    return out | {k for k in named if k in graph}


def test_building_an_object_from_a_config_never_simulates_or_trains():
    """Factories only load: a refiner whose network is not cached is a usage error naming the command that
    trains it (robocl.refiners.afm:from_config), never a simulation and a training job."""
    graph = calls_graph()
    for module, names in SIMULATES_OR_TRAINS.items():
        assert {(module, n) for n in names} <= set(graph), (module, names)  # renamed: follow it here
    roots = builders(graph)
    assert {("robocl.refiners.afm", "from_config"), ("robocl.build.controller", "make_controller"),
            ("robocl_ros.node", "build_controller"), ("robocl.build.planners", "mppi"),
            ("robocl.robots.codec", "planar_codec")} <= roots
    offenders = []
    for root in sorted(roots):
        seen, stack = {root: [root]}, [root]
        while stack:
            fn = stack.pop()
            for nxt in graph.get(fn, ()):
                if nxt in seen:
                    continue
                seen[nxt] = [*seen[fn], nxt]
                if nxt[1] in SIMULATES_OR_TRAINS.get(nxt[0], ()):
                    offenders.append(" -> ".join(f"{m}:{f}" for m, f in seen[nxt]))
                elif nxt in graph:
                    stack.append(nxt)
    assert len(roots) > 20 and not offenders, offenders
