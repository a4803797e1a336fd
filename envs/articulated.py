"""Procedural articulated cabinets in MuJoCo and a drag-primitive environment.

Three categories make the drag predictor generalize across shapes: `cabinet` (drawer rows over a
door row), `drawer_unit` (drawers only) and `fridge` (tall, one or two doors). A seeded generator
samples a `CabinetSpec` (sizes, layout, joint limits, damping, friction, colours) and
`cabinet_mjcf` turns it into an MJCF string. Movable part k (1-based) is body `part{k}` with joint
`part{k}_joint`: a slide joint for a drawer, a hinge for a door; every part carries a handle.

Frames: the cabinet stands on the floor, its front facing world -y (up to a random yaw), so the
fixed cameras `cam0..` on the -y side see the fronts. Nothing collides: parts move only through
their joints, which keeps drags cheap and makes the outcome of a drag a pure kinematic question.

`CabinetEnv` (registered as `robocl/Cabinet-v0`) executes a drag (start point, 3-D vector) with a
point-contact gripper: a mocap marker whose target moves along the drag while a stiff Cartesian
spring (the grasp) pulls the grasped point of the part after it. At rest the grasped point is the
feasible point closest to the drag's end, which is the same rule `drag_to_delta` uses for labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .mujoco_base import mujoco
from .pointcloud import MultiViewRenderer, PointCloud, part_motion

CATEGORIES = ("cabinet", "drawer_unit", "fridge")
MAX_PARTS = 8
PRISMATIC, REVOLUTE = 0, 1
JOINT_NAMES = {PRISMATIC: "prismatic", REVOLUTE: "revolute"}
GAP = 0.003  # m, clearance between a part's front and the frame around it
HANDLE_T = 0.012  # m, cross-section of handle bars
FOVY = 45.0  # degrees, every camera
GRASP_RADIUS = 0.015  # m, how far from a surface the gripper still grasps it


@dataclass(frozen=True)
class PartSpec:
    """One movable part: its front panel's centre (x, z) and size (w, h) in the cabinet frame."""

    kind: str  # "drawer" | "door"
    center: tuple[float, float]
    size: tuple[float, float]
    hinge: str | None  # "left" | "right" for doors
    limit: float  # upper joint limit (m for drawers, rad for doors); the lower one is 0 (closed)
    damping: float
    friction: float
    depth: float  # drawer box depth (m); 0 for doors
    handle_len: float
    standoff: float  # m, handle bar distance from the front

    @property
    def joint_type(self) -> int:
        return PRISMATIC if self.kind == "drawer" else REVOLUTE


@dataclass(frozen=True)
class CabinetSpec:
    """Everything the MJCF of one cabinet instance depends on (so a seed reproduces it)."""

    category: str
    seed: int
    width: float
    depth: float
    height: float
    thickness: float  # panel thickness
    frame: float  # width of the front frame members between parts
    plinth: float
    protrude: float  # how far fronts stand proud of the frame
    yaw: float
    position: tuple[float, float]
    body_rgb: tuple[float, float, float]
    front_rgb: tuple[float, float, float]
    handle_rgb: tuple[float, float, float]
    parts: tuple[PartSpec, ...]
    rails: tuple[float, ...] = field(default=())  # z of horizontal rails between rows (shelves behind)
    stiles: tuple[tuple[float, float, float], ...] = field(default=())  # (x, z0, z1) vertical dividers


# ---------------------------------------------------------------- sampling


def _split(total: float, weights: list[float]) -> list[float]:
    s = sum(weights)
    return [total * w / s for w in weights]


def _colours(rng: np.random.Generator) -> tuple[tuple, tuple, tuple]:
    """Carcass and fronts get clearly different colours (a face-frame look), handles are metal."""
    palette = [(0.55, 0.38, 0.22), (0.85, 0.85, 0.82), (0.25, 0.27, 0.30), (0.70, 0.55, 0.35),
               (0.35, 0.45, 0.55), (0.60, 0.20, 0.18), (0.30, 0.50, 0.35), (0.93, 0.90, 0.80)]
    i, j = rng.choice(len(palette), size=2, replace=False)
    jitter = rng.uniform(-0.05, 0.05, size=(2, 3))
    body = tuple(float(np.clip(c + d, 0, 1)) for c, d in zip(palette[i], jitter[0]))
    front = tuple(float(np.clip(c + d, 0, 1)) for c, d in zip(palette[j], jitter[1]))
    grey = float(rng.uniform(0.55, 0.8))
    return body, front, (grey, grey, grey * 1.02)


def _row_layout(category: str, rng: np.random.Generator, width: float, height: float) -> list[tuple[str, int]]:
    """Rows from top to bottom as (kind, cells): cells=2 splits the row into a left and right part."""
    wide = width > 0.75
    if category == "drawer_unit":
        n = int(rng.integers(2, 6))
        return [("drawer", 2 if wide and rng.random() < 0.4 else 1) for _ in range(n)]
    if category == "cabinet":
        rows = [("drawer", 2 if wide and rng.random() < 0.5 else 1) for _ in range(int(rng.integers(1, 3)))]
        return rows + [("door", 2 if wide and rng.random() < 0.6 else 1)]
    if category == "fridge":
        return [("door", 1)] * int(rng.integers(1, 3))
    raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")


def sample_cabinet(seed: int, category: str | None = None) -> CabinetSpec:
    """A random cabinet of `category` (random category if None), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    category = category or CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    if category == "fridge":
        width, depth, height = rng.uniform(0.55, 0.9), rng.uniform(0.55, 0.75), rng.uniform(1.4, 1.9)
    elif category == "cabinet":
        width, depth, height = rng.uniform(0.55, 1.2), rng.uniform(0.4, 0.6), rng.uniform(0.7, 1.1)
    else:
        width, depth, height = rng.uniform(0.4, 1.0), rng.uniform(0.4, 0.6), rng.uniform(0.5, 1.2)
    t = float(rng.uniform(0.015, 0.022))
    frame = float(rng.uniform(0.025, 0.04))
    plinth = float(rng.uniform(0.04, 0.1)) if category != "fridge" else float(rng.uniform(0.02, 0.05))
    rows = _row_layout(category, rng, width, height)
    inner_h = height - plinth - frame * (len(rows) + 1)
    if category == "fridge":
        weights = [rng.uniform(0.3, 0.45), 1.0] if len(rows) == 2 else [1.0]
    else:
        weights = [rng.uniform(0.6, 1.0) if kind == "drawer" else rng.uniform(1.6, 2.6) for kind, _ in rows]
    heights = _split(inner_h, weights)
    hinge_side = "left" if rng.random() < 0.5 else "right"
    parts: list[PartSpec] = []
    rails: list[float] = []
    stiles: list[tuple[float, float, float]] = []
    z_top = height - frame
    inner_w = width - 2 * frame
    for r, ((kind, cells), h) in enumerate(zip(rows, heights)):
        z0, z1 = z_top - h, z_top
        cell_w = (inner_w - frame * (cells - 1)) / cells
        if cells == 2:
            stiles.append((0.0, z0, z1))
        for c in range(cells):
            x0 = -width / 2 + frame + c * (cell_w + frame)
            pw, ph = cell_w - 2 * GAP, h - 2 * GAP
            center = (x0 + cell_w / 2, (z0 + z1) / 2)
            if kind == "drawer":
                ddepth = depth - 2 * t - 0.02
                parts.append(PartSpec(
                    kind="drawer", center=center, size=(pw, ph), hinge=None,
                    limit=float(rng.uniform(0.6, 0.85) * ddepth), damping=float(rng.uniform(1.0, 8.0)),
                    friction=float(rng.uniform(0.1, 2.0)), depth=ddepth,
                    handle_len=float(min(0.3, rng.uniform(0.3, 0.6) * pw)),
                    standoff=float(rng.uniform(0.025, 0.04))))
            else:
                hinge = ("left" if c == 0 else "right") if cells == 2 else hinge_side
                parts.append(PartSpec(
                    kind="door", center=center, size=(pw, ph), hinge=hinge,
                    limit=float(rng.uniform(1.4, 2.0)), damping=float(rng.uniform(0.2, 1.5)),
                    friction=float(rng.uniform(0.05, 0.5)), depth=0.0,
                    handle_len=float(min(0.45, rng.uniform(0.25, 0.5) * ph)),
                    standoff=float(rng.uniform(0.025, 0.04))))
        if r < len(rows) - 1:
            rails.append(z0 - frame / 2)
        z_top = z0 - frame
    body, front, handle = _colours(rng)
    return CabinetSpec(
        category=category, seed=int(seed), width=float(width), depth=float(depth), height=float(height),
        thickness=t, frame=frame, plinth=plinth, protrude=float(rng.uniform(0.0, 0.012)),
        yaw=float(rng.uniform(-0.5, 0.5)), position=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
        body_rgb=body, front_rgb=front, handle_rgb=handle, parts=tuple(parts[:MAX_PARTS]),
        rails=tuple(rails), stiles=tuple(stiles))


# ---------------------------------------------------------------- MJCF


def _box(name: str, pos, half, rgba, extra: str = "") -> str:
    p = " ".join(f"{v:.5f}" for v in pos)
    s = " ".join(f"{max(v, 1e-4):.5f}" for v in half)
    c = " ".join(f"{v:.3f}" for v in rgba)
    return f'<geom name="{name}" type="box" pos="{p}" size="{s}" rgba="{c}" {extra}/>'


def _carcass(spec: CabinetSpec) -> list[str]:
    """Static body: shell panels, front frame, shelves behind rails and dividers behind stiles."""
    w, d, h, t, f = spec.width, spec.depth, spec.height, spec.thickness, spec.frame
    rgba = (*spec.body_rgb, 1.0)
    yf = -d / 2 + t / 2  # centre of the front frame members
    g = [
        _box("side_l", (-w / 2 + t / 2, 0, h / 2), (t / 2, d / 2, h / 2), rgba),
        _box("side_r", (w / 2 - t / 2, 0, h / 2), (t / 2, d / 2, h / 2), rgba),
        _box("top", (0, 0, h - t / 2), (w / 2, d / 2, t / 2), rgba),
        _box("bottom", (0, 0, spec.plinth + t / 2), (w / 2 - t, d / 2, t / 2), rgba),
        _box("back", (0, d / 2 - t / 2, h / 2), (w / 2 - t, t / 2, h / 2 - t), rgba),
        _box("kick", (0, -d / 2 + 0.03, spec.plinth / 2), (w / 2 - t, t / 2, spec.plinth / 2), rgba),
        _box("stile_l", (-w / 2 + f / 2, yf, (h + spec.plinth) / 2), (f / 2, t / 2, (h - spec.plinth) / 2), rgba),
        _box("stile_r", (w / 2 - f / 2, yf, (h + spec.plinth) / 2), (f / 2, t / 2, (h - spec.plinth) / 2), rgba),
        _box("rail_top", (0, yf, h - f / 2), (w / 2 - f, t / 2, f / 2), rgba),
        _box("rail_bottom", (0, yf, spec.plinth + f / 2), (w / 2 - f, t / 2, f / 2), rgba),
    ]
    for i, z in enumerate(spec.rails):
        g.append(_box(f"rail{i}", (0, yf, z), (w / 2 - f, t / 2, f / 2), rgba))
        g.append(_box(f"shelf{i}", (0, t / 2, z), (w / 2 - t, d / 2 - t, t / 2), rgba))
    for i, (x, z0, z1) in enumerate(spec.stiles):
        g.append(_box(f"stile{i}", (x, yf, (z0 + z1) / 2), (f / 2, t / 2, (z1 - z0) / 2), rgba))
        g.append(_box(f"divider{i}", (x, t / 2, (z0 + z1) / 2), (t / 2, d / 2 - t, (z1 - z0) / 2), rgba))
    return g


def _handle(k: int, spec: CabinetSpec, part: PartSpec, x: float, vertical: bool) -> list[str]:
    """A bar on two posts, `standoff` in front of the panel, centred at (x, 0) in the part frame."""
    t, s, hl = spec.thickness, part.standoff, part.handle_len
    rgba = (*spec.handle_rgb, 1.0)
    y_bar = -t / 2 - s
    y_post = -t / 2 - s / 2
    c = HANDLE_T / 2
    if vertical:
        bar = _box(f"p{k}_handle", (x, y_bar, 0), (c, c, hl / 2), rgba)
        posts = [_box(f"p{k}_post{i}", (x, y_post, z), (c * 0.8, s / 2, c * 0.8), rgba)
                 for i, z in enumerate((-hl / 2 + 0.01, hl / 2 - 0.01))]
    else:
        bar = _box(f"p{k}_handle", (x, y_bar, 0), (hl / 2, c, c), rgba)
        posts = [_box(f"p{k}_post{i}", (px, y_post, 0), (c * 0.8, s / 2, c * 0.8), rgba)
                 for i, px in enumerate((x - hl / 2 + 0.01, x + hl / 2 - 0.01))]
    return [bar, *posts]


def _part_body(k: int, spec: CabinetSpec, part: PartSpec) -> str:
    t = spec.thickness
    pw, ph = part.size
    cx, cz = part.center
    y = -spec.depth / 2 + t / 2 - spec.protrude
    rgba = (*spec.front_rgb, 1.0)
    inner = (*(0.85 * c for c in spec.front_rgb), 1.0)
    joint = (f'damping="{part.damping:.4f}" frictionloss="{part.friction:.4f}" armature="0.01" '
             f'range="0 {part.limit:.5f}" limited="true"')
    if part.kind == "drawer":
        bw, bh, dd = pw - 0.02, 0.7 * ph, part.depth
        zb = -ph / 2 + 0.015
        geoms = [
            _box(f"p{k}_front", (0, 0, 0), (pw / 2, t / 2, ph / 2), rgba),
            _box(f"p{k}_floor", (0, t / 2 + dd / 2, zb), (bw / 2, dd / 2, 0.005), inner),
            _box(f"p{k}_wall_l", (-bw / 2 + 0.006, t / 2 + dd / 2, zb + bh / 2), (0.006, dd / 2, bh / 2), inner),
            _box(f"p{k}_wall_r", (bw / 2 - 0.006, t / 2 + dd / 2, zb + bh / 2), (0.006, dd / 2, bh / 2), inner),
            _box(f"p{k}_wall_b", (0, t / 2 + dd - 0.006, zb + bh / 2), (bw / 2, 0.006, bh / 2), inner),
            *_handle(k, spec, part, 0.0, vertical=False),
        ]
        head = (f'<body name="part{k}" pos="{cx:.5f} {y:.5f} {cz:.5f}">'
                f'<joint name="part{k}_joint" type="slide" axis="0 -1 0" {joint}/>')
    else:
        sign = 1.0 if part.hinge == "left" else -1.0  # panel extends +x from a left hinge
        hx = cx - sign * pw / 2
        geoms = [
            _box(f"p{k}_front", (sign * pw / 2, 0, 0), (pw / 2, t / 2, ph / 2), rgba),
            *_handle(k, spec, part, sign * (pw - 0.05), vertical=True),
        ]
        # left hinge: opening swings the free edge toward -y, i.e. a rotation about -z
        head = (f'<body name="part{k}" pos="{hx:.5f} {y:.5f} {cz:.5f}">'
                f'<joint name="part{k}_joint" type="hinge" axis="0 0 {-sign:.0f}" pos="0 0 0" {joint}/>')
    return head + "".join(geoms) + "</body>"


def _look_at(eye: np.ndarray, target: np.ndarray) -> str:
    """MJCF `xyaxes` for a camera at `eye` looking at `target` (MuJoCo cameras look along -z)."""
    fwd = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(fwd, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(-fwd, x)
    return " ".join(f"{v:.5f}" for v in (*x, *y))


def camera_poses(spec: CabinetSpec, n: int = 3) -> list[tuple[np.ndarray, str]]:
    """`n` cameras on the front side at a distance that fits the whole cabinet in view."""
    target = np.array([spec.position[0], spec.position[1], spec.height * 0.5])
    size = max(spec.width, spec.height, spec.depth)
    dist = 1.25 * size / (2 * math.tan(math.radians(FOVY) / 2)) + spec.depth
    views = [(-40.0, 25.0), (40.0, 25.0), (0.0, 55.0), (0.0, 8.0), (-70.0, 35.0), (70.0, 35.0)]
    out = []
    for az, el in views[:n]:
        a, e = math.radians(az), math.radians(el)
        eye = target + dist * np.array([math.sin(a) * math.cos(e), -math.cos(a) * math.cos(e), math.sin(e)])
        out.append((eye, _look_at(eye, target)))
    return out


def cabinet_mjcf(spec: CabinetSpec, cameras: int = 3) -> str:
    """The MJCF of one cabinet scene: floor, cabinet, `cameras` fixed views, a mocap gripper."""
    parts = "".join(_part_body(k, spec, p) for k, p in enumerate(spec.parts, start=1))
    carcass = "".join(_carcass(spec))
    poses = camera_poses(spec, max(cameras, 4))
    names = [f"cam{i}" for i in range(cameras)] + ["view"]  # "view": pictures only, not observed
    cams = "".join(
        f'<camera name="{name}" pos="{" ".join(f"{v:.5f}" for v in eye)}" xyaxes="{xy}" fovy="{FOVY}"/>'
        for name, (eye, xy) in zip(names, poses[:cameras] + [poses[3]]))
    qw, qz = math.cos(spec.yaw / 2), math.sin(spec.yaw / 2)
    px, py = spec.position
    return f"""<mujoco model="cabinet_{spec.category}_{spec.seed}">
  <compiler angle="radian"/>
  <option timestep="0.002" integrator="implicitfast"/>
  <visual><global offwidth="640" offheight="480"/><headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5"/></visual>
  <default><geom contype="0" conaffinity="0" density="500"/></default>
  <worldbody>
    <light pos="0 -2 3" dir="0 0.6 -0.8" diffuse="0.5 0.5 0.5"/>
    <geom name="floor" type="plane" size="4 4 0.1" rgba="0.6 0.6 0.62 1"/>
    {cams}
    <body name="cabinet" pos="{px:.5f} {py:.5f} 0" quat="{qw:.6f} 0 0 {qz:.6f}">{carcass}{parts}</body>
    <body name="gripper" mocap="true" pos="0 -3 0.5">
      <geom name="gripper" type="sphere" size="0.018" rgba="0.9 0.2 0.1 1" group="3"/>
    </body>
  </worldbody>
</mujoco>
"""


# ---------------------------------------------------------------- kinematics of a drag


def drag_to_delta(start: np.ndarray, vec: np.ndarray, joint_type: int, axis: np.ndarray, origin: np.ndarray,
                  q: float, lo: float, hi: float) -> float:
    """Joint displacement a drag causes: the feasible point closest to `start + vec`, within limits.

    Prismatic: the projection of the drag on the axis. Revolute: the signed angle about the axis
    between the start and end points seen from the hinge line. Clamped so q + delta stays in [lo, hi].
    """
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    if joint_type == PRISMATIC:
        delta = float(np.dot(vec, axis))
    else:
        r0 = np.asarray(start, dtype=np.float64) - origin
        r1 = r0 + vec
        r0 = r0 - np.dot(r0, axis) * axis
        r1 = r1 - np.dot(r1, axis) * axis
        if np.linalg.norm(r0) < 1e-6 or np.linalg.norm(r1) < 1e-6:
            return 0.0
        delta = float(math.atan2(np.dot(axis, np.cross(r0, r1)), np.dot(r0, r1)))
    return float(np.clip(q + delta, lo, hi) - q)


# ---------------------------------------------------------------- environment


@dataclass(frozen=True)
class JointFrame:
    """A part's joint in the world frame at the current state."""

    part: int
    joint_type: int
    axis: np.ndarray
    origin: np.ndarray
    q: float
    lo: float
    hi: float


class CabinetEnv(gym.Env[np.ndarray, np.ndarray]):
    """One cabinet scene: joint state access, multi-view point clouds and physical drags.

    Gymnasium-style (`reset`, `step`, `render`); actions are drags: [start xyz, vector xyz] in
    the world frame. `reset(options={"spec": CabinetSpec})` loads a given cabinet; otherwise one
    is sampled from `seed` (and `options["category"]`).
    """

    metadata = {"render_modes": ["rgb_array"]}
    stiffness = 3000.0  # N/m, grasp spring
    move_s, hold_s, settle_s = 0.6, 0.4, 0.3

    def __init__(self, category: str | None = None, cameras: int = 3, image_size: tuple[int, int] = (160, 160),
                 render_mode: str | None = None, max_drag: float = 0.3) -> None:
        self.category = category
        self.n_cameras = cameras
        self.image_size = image_size
        self.render_mode = render_mode
        self.max_drag = max_drag
        self.action_space = spaces.Box(-3.0, 3.0, shape=(6,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(MAX_PARTS,), dtype=np.float32)
        self.spec: CabinetSpec | None = None
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None
        self._views: MultiViewRenderer | None = None
        self._viewer: mujoco.Renderer | None = None

    # -- setup
    def load(self, spec: CabinetSpec) -> None:
        self.close()
        self.spec = spec
        self.model = mujoco.MjModel.from_xml_string(cabinet_mjcf(spec, self.n_cameras))
        self.data = mujoco.MjData(self.model)
        m = self.model
        self.part_body = np.array([m.body(f"part{k}").id for k in range(1, self.n_parts + 1)], dtype=np.int64)
        self.part_joint = np.array([m.joint(f"part{k}_joint").id for k in range(1, self.n_parts + 1)], dtype=np.int64)
        self.part_qadr = m.jnt_qposadr[self.part_joint]
        self.part_dof = m.jnt_dofadr[self.part_joint]
        self.geom_label = self._geom_labels()
        names = [m.geom(g).name for g in range(m.ngeom)]
        self.geom_handle = np.array([n.endswith("_handle") or "_post" in n for n in names], dtype=bool)
        self.mocap = int(m.body_mocapid[m.body("gripper").id])
        mujoco.mj_forward(m, self.data)

    def _geom_labels(self) -> np.ndarray:
        """Per-geom part label: 0 static cabinet, k part k, -1 not the object (floor, gripper)."""
        m = self.model
        labels = np.full(m.ngeom, -1, dtype=np.int16)
        cabinet = m.body("cabinet").id
        for g in range(m.ngeom):
            b = int(m.geom_bodyid[g])
            if b == cabinet:
                labels[g] = 0
            elif b in self.part_body:
                labels[g] = int(np.flatnonzero(self.part_body == b)[0]) + 1
        return labels

    @property
    def n_parts(self) -> int:
        return len(self.spec.parts) if self.spec else 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        spec = options.get("spec") or sample_cabinet(int(seed if seed is not None else 0),
                                                     options.get("category", self.category))
        self.load(spec)
        if "qpos" in options:
            self.set_state(np.asarray(options["qpos"], dtype=np.float64))
        return self._obs(), {"spec": spec}

    def _obs(self) -> np.ndarray:
        obs = np.zeros(MAX_PARTS, dtype=np.float32)
        obs[: self.n_parts] = self.joint_state()
        return obs

    # -- state
    def joint_state(self) -> np.ndarray:
        return self.data.qpos[self.part_qadr].copy()

    def set_state(self, q: np.ndarray) -> None:
        """Put the parts at joint positions `q` (clamped to the limits), at rest."""
        lo, hi = self.limits()
        self.data.qpos[self.part_qadr] = np.clip(q, lo, hi)
        self.data.qvel[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        r = self.model.jnt_range[self.part_joint]
        return r[:, 0].copy(), r[:, 1].copy()

    def joint_frame(self, part: int) -> JointFrame:
        j = int(self.part_joint[part - 1])
        jt = PRISMATIC if self.model.jnt_type[j] == mujoco.mjtJoint.mjJNT_SLIDE else REVOLUTE
        lo, hi = self.model.jnt_range[j]
        return JointFrame(part, jt, self.data.xaxis[j].copy(), self.data.xanchor[j].copy(),
                          float(self.data.qpos[self.part_qadr[part - 1]]), float(lo), float(hi))

    # -- perception
    def point_cloud(self, n_points: int = 2048, rng: np.random.Generator | None = None,
                    sampling: str = "fps") -> PointCloud:
        """Fused multi-view RGB-D cloud of the object with per-point part labels."""
        if self._views is None:
            w, h = self.image_size
            self._views = MultiViewRenderer(self.model, [f"cam{i}" for i in range(self.n_cameras)], w, h)
        return self._views.point_cloud(self.data, self.geom_label, n_points, rng or np.random.default_rng(0),
                                       sampling=sampling)

    def handle_mask(self, cloud: PointCloud) -> np.ndarray:
        """Which points of `cloud` lie on a handle (bar or posts): where a gripper can grasp."""
        return self.geom_handle[cloud.geoms]

    def part_at(self, point: np.ndarray, radius: float = GRASP_RADIUS) -> int:
        """Label of the object surface at `point` (nearest box geom within `radius`), -1 if none."""
        m, d = self.model, self.data
        ids = np.flatnonzero(self.geom_label >= 0)
        local = np.einsum("gji,gj->gi", d.geom_xmat[ids].reshape(-1, 3, 3), point - d.geom_xpos[ids])
        outside = np.maximum(np.abs(local) - m.geom_size[ids], 0.0)
        dist = np.linalg.norm(outside, axis=1)
        best = int(np.argmin(dist))
        return int(self.geom_label[ids[best]]) if dist[best] <= radius else -1

    def motion(self, points: np.ndarray, labels: np.ndarray, part: int, delta: float) -> np.ndarray:
        """Ground-truth displacement of each point when `part`'s joint moves by `delta`."""
        if part <= 0:
            return np.zeros_like(points)
        jf = self.joint_frame(part)
        return part_motion(points, labels, part, jf.joint_type, jf.axis, jf.origin, delta)

    # -- acting
    def step(self, action: np.ndarray):
        """Grasp the part under `action[:3]` and move the gripper along `action[3:]` (a drag)."""
        action = np.asarray(action, dtype=np.float64)
        start, vec = action[:3], action[3:6]
        norm = np.linalg.norm(vec)
        if norm > self.max_drag:
            vec = vec * (self.max_drag / norm)
        part = self.part_at(start)
        q0 = self.joint_state()
        self._drag(start, vec, part)
        q1 = self.joint_state()
        info = {"part": part, "q_before": q0, "q_after": q1, "drag": vec}
        return self._obs(), 0.0, False, False, info

    def _drag(self, start: np.ndarray, vec: np.ndarray, part: int) -> None:
        m, d = self.model, self.data
        dt = m.opt.timestep
        n_move, n_hold, n_settle = (int(round(s / dt)) for s in (self.move_s, self.hold_s, self.settle_s))
        body = int(self.part_body[part - 1]) if part > 0 else -1
        if body >= 0:
            local = d.xmat[body].reshape(3, 3).T @ (start - d.xpos[body])
        jacp = np.zeros((3, m.nv))
        damping = 2.0 * math.sqrt(self.stiffness * 2.0)  # ~critical for a few kg
        for i in range(n_move + n_hold + n_settle):
            s = min(i / n_move, 1.0)
            target = start + vec * (3 * s * s - 2 * s * s * s)  # smooth start and stop
            d.mocap_pos[self.mocap] = target
            d.qfrc_applied[:] = 0.0
            if body >= 0 and i < n_move + n_hold:
                point = d.xpos[body] + d.xmat[body].reshape(3, 3) @ local
                mujoco.mj_jac(m, d, jacp, None, point, body)
                force = self.stiffness * (target - point) - damping * (jacp @ d.qvel)
                d.qfrc_applied[:] = jacp.T @ force
            mujoco.mj_step(m, d)
        d.qfrc_applied[:] = 0.0
        d.qvel[:] = 0.0
        mujoco.mj_forward(m, d)

    # -- pictures
    def render(self, camera: str = "view", show_gripper: bool = True, size: tuple[int, int] = (320, 320)):
        """An RGB picture (for before/after figures); "view" is a low front camera nobody observes."""
        if self._viewer is None:
            self._viewer = mujoco.Renderer(self.model, height=size[1], width=size[0])
        opt = mujoco.MjvOption()
        opt.geomgroup[3] = int(show_gripper)
        self._viewer.update_scene(self.data, camera=camera, scene_option=opt)
        return self._viewer.render()

    def close(self) -> None:
        for r in (self._views, self._viewer):
            if r is not None:
                r.close()
        self._views = None
        self._viewer = None
