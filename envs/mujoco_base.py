"""What every robocl MuJoCo robot env shares: headless offscreen rendering and body orientation."""

from __future__ import annotations

import os
from importlib.resources import files

import gymnasium as gym
import numpy as np

if "DISPLAY" not in os.environ:  # headless: offscreen rendering through EGL (must precede mujoco)
    os.environ.setdefault("MUJOCO_GL", "egl")
import mujoco  # noqa: E402


class MujocoRobotEnv(gym.Env[np.ndarray, np.ndarray]):
    """Base for free-floating-base robots; subclasses set `model`, `data`, `camera`, `render_mode`."""

    model: mujoco.MjModel
    data: mujoco.MjData
    camera: str
    _renderer: mujoco.Renderer | None = None

    def _load_mujoco(self, asset: str, render_mode: str | None, camera: str) -> None:
        """Validate the render mode, compile `assets/<asset>`, and make the live and scratch data.

        The scratch MjData is where `mj_setConst` may run without touching the live state.
        """
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode={render_mode!r}: use None or 'rgb_array'")
        xml = files("robocl_envs").joinpath("assets", asset).read_text()
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)
        self.render_mode = render_mode
        self.camera = camera
        self._renderer = None

    def _rotation(self) -> np.ndarray:
        """World-from-body rotation of the free joint's quaternion (qpos[3:7])."""
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, self.data.qpos[3:7])
        return rot.reshape(3, 3)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, height=480, width=640)
        self._renderer.update_scene(self.data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
