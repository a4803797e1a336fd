"""A real ROS graph on this machine, for the tests and `python -m robocl_ros.measure`.

- ROS 2: the PyPI wheels in the running environment (installed on demand with pip, the `[ros2]`
  extra's packages), processes on loopback with a fixed `ROS_DOMAIN_ID` and
  `ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`.
- ROS 1: Debian bookworm's packages (installed on demand with apt-get), a `roscore -p PORT` started
  and stopped by process id, `ROS_MASTER_URI=http://127.0.0.1:PORT`, `ROS_HOSTNAME=127.0.0.1`.
Every process is started in its own session and stopped by its process id (SIGINT, then SIGKILL).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from robocl_ros.ros1 import DIST, MSG_PACKAGES

ROS2_PACKAGES = ["ros-rclpy", "ros-geometry-msgs", "ros-nav-msgs", "ros-std-msgs", "ros-rmw-fastrtps-cpp"]
ROS1_APT = ["ros-core", "python3-rospy", "python3-geometry-msgs", "python3-nav-msgs", "python3-std-msgs",
            "python3-rostopic"]


def bin_path(name: str) -> str:
    """A console script of this environment (robocl-ros, robocl-ros-sim)."""
    return str(Path(sys.executable).with_name(name))


def _probe_import(code: str, env: dict[str, str] | None = None) -> str | None:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})
    if proc.returncode == 0:
        return None
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"


def ros2_problem() -> str | None:
    """None if rclpy and the messages import in a fresh interpreter, else why not."""
    return _probe_import("from robocl_ros.ros2 import import_rclpy; import_rclpy(); "
                         "import rosgraph_msgs.msg, rclpy.executors")


def ros1_problem() -> str | None:
    if shutil.which("roscore") is None:
        return "roscore is not on PATH"
    if not all((Path(DIST) / name).is_dir() for name in (*MSG_PACKAGES, "rospy")):
        return f"rospy or its message packages are missing in {DIST}"
    return _probe_import("from robocl_ros.ros1 import import_rospy; import_rospy()")


def install_ros2() -> str | None:
    """pip-install the `[ros2]` extra's packages into this environment; None on success, else the error."""
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *ROS2_PACKAGES], capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        return "pip install failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return ros2_problem()


def install_ros1() -> str | None:
    """apt-get the ROS 1 packages (Debian bookworm, needs root); None on success, else the error."""
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "installing ROS 1 needs root (apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends", *ROS1_APT]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        if proc.returncode != 0:
            return f"{' '.join(cmd[:2])} failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return ros1_problem()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ros2_env(domain_id: int) -> dict[str, str]:
    """Loopback discovery on a private domain. Fast DDS over UDP only: a SIGKILLed participant can leave
    Fast DDS's shared-memory ports locked, so later participants on the host miss its successors' data."""
    return {"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp", "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}


def ros1_env(port: int) -> dict[str, str]:
    return {"ROS_MASTER_URI": f"http://127.0.0.1:{port}", "ROS_HOSTNAME": "127.0.0.1",
            "ROS_LOG_DIR": os.environ.get("ROS_LOG_DIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "robocl-roslog"))}


class Proc:
    """A child process in its own session, output to a log file, stopped by its process id."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> None:
        self.args, self.log = args, Path(log)
        self._fh = open(self.log, "w")  # noqa: SIM115 (closed in stop)
        self.popen = subprocess.Popen(args, stdout=self._fh, stderr=subprocess.STDOUT, cwd=cwd,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def text(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.text():
                return True
            if not self.alive():
                return needle in self.text()
            time.sleep(0.05)
        return False

    def wait(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> float:
        """SIGKILL now; returns the steady-clock time it was sent."""
        t = time.monotonic()
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)
        return t

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGINT (the node saves its checkpoint and results), then SIGKILL after `timeout`."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        self._fh.close()
        return self.popen.returncode


class Roscore:
    """`roscore -p PORT`, started and stopped by process id (it and its rosmaster/rosout children)."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = ros1_env(self.port)
        self.proc = Proc(["roscore", "-p", str(self.port)], Path(log_dir) / f"roscore-{self.port}.log", self.env)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if not self.proc.alive():
                raise RuntimeError(f"roscore exited: {self.proc.text()[-500:]}")
            if _master_up(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"roscore did not come up on port {self.port}: {self.proc.text()[-500:]}")

    def stop(self) -> None:
        pid = self.proc.pid
        if self.proc.alive():
            try:
                os.killpg(pid, signal.SIGINT)  # roscore's own session: it and the rosmaster/rosout it started
            except ProcessLookupError:
                pass
            if self.proc.wait(10) is None:
                os.killpg(pid, signal.SIGKILL)
        self.proc.stop(1)


def _master_up(port: int) -> bool:
    import xmlrpc.client

    try:
        code, _, _ = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}").getSystemState("/robocl_check")
        return code == 1
    except OSError:
        return False


def read_results(run_dir: Path) -> dict:
    import json

    return json.loads((Path(run_dir) / "results.json").read_text())["runs"][0]


def drive_course(out: Path, env: dict[str, str], sim_args: list[str], node_args: list[str],
                 timeout: float = 240.0, node_cmd: list[str] | None = None) -> tuple[dict, dict, str]:
    """Sim and node as two processes until the sim ends its course; (sim row, node row, node log).

    The sim starts first (it owns /clock and, in ROS 1, sets /use_sim_time) and waits for the node's first
    command; the node is stopped with SIGINT once the sim is done, and writes its results and checkpoint.
    `node_cmd` replaces the node's command line (e.g. roslaunch); it must put the node's run dir at out/node.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sim = Proc([bin_path("robocl-ros-sim"), *sim_args, f"hydra.run.dir={out / 'sim'}"], out / "sim.log", env)
    cmd = node_cmd or [bin_path("robocl-ros"), *node_args, f"hydra.run.dir={out / 'node'}"]  # node_cmd: run dir
    node = Proc(cmd, out / "node.log", env)
    try:
        code = sim.wait(timeout)
        if code is None:
            raise AssertionError(f"sim did not finish in {timeout:g} s\n--- sim ---\n{sim.text()[-1500:]}\n"
                                 f"--- node ---\n{node.text()[-1500:]}")
        if code != 0:
            raise AssertionError(f"sim exited {code}\n{sim.text()[-1500:]}\n--- node ---\n{node.text()[-1500:]}")
    finally:
        sim.stop()
        node_code = node.stop(60)
    if node_code != 0:
        raise AssertionError(f"node exited {node_code}\n{node.text()[-2000:]}")
    return read_results(out / "sim"), read_results(out / "node"), node.text()


def ensure(transport: str) -> str | None:
    """Install the ROS pieces for `transport` if missing (unless ROBOCL_ROS_INSTALL=0); None when usable."""
    problem = ros2_problem() if transport == "ros2" else ros1_problem()
    if problem and os.environ.get("ROBOCL_ROS_INSTALL", "1") != "0":
        problem = install_ros2() if transport == "ros2" else install_ros1()
    return problem


def wait_until(predicate, timeout: float, every: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return False


def wait_file(path: Path, needle: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if Path(path).exists() and needle in Path(path).read_text():
            return True
        time.sleep(0.05)
    return False


def kill_trial(out: Path, env: dict[str, str], transport: str, node_args: list[str],
               nan_window: tuple[float, float] | None = None, drive_s: float = 0.6, min_commands: int = 8,
               robot: str = "ugv") -> dict:
    """Node (wall clock) + sim + listener: (NaN odometry in `nan_window`, then) drive until the listener has
    heard `min_commands` commands and `drive_s` more, SIGKILL the sim, and read the listener:
    {'rows', 'killed', 'last_odom', 'first_safe', 'node_log', 'node_code'}. Counting heard commands, not
    wall time, keeps the trial the same on a loaded machine, where the node's first plans come late."""
    from robocl_ros import probe

    out = Path(out)
    t = ["ros.transport=" + transport]
    listener = Proc([sys.executable, "-m", "robocl_ros.probe", "--transport", transport, "--robot", robot, "--out",
                     str(out / "probe.csv")], out / "probe.log", env)
    course = "ugv_short" if robot == "ugv" else "quad_square"
    sim_args = [bin_path("robocl-ros-sim"), f"robot={robot}", *t, f"task.map={course}", f"hydra.run.dir={out / 'sim'}"]
    if nan_window:
        sim_args.append(f"ros.sim.nan_window=[{nan_window[0]},{nan_window[1]}]")
    sim = Proc(sim_args, out / "sim.log", env)
    node = Proc([bin_path("robocl-ros"), f"robot={robot}", *t, *node_args, f"hydra.run.dir={out / 'node'}"],
                out / "node.log", env)
    try:
        if not wait_file(out / "probe.csv", "ready", 60):
            raise AssertionError(f"listener not ready: {listener.text()[-1000:]}")
        wait_until(lambda: bool(probe.read(out / "probe.csv")["odom"]), 60)  # the listener hears the sim
        needle = "inputs healthy again" if nan_window else "first command"
        if not (node if nan_window else sim).wait_for(needle, 180):
            raise AssertionError(f"no '{needle}'\n--- node ---\n{node.text()[-2000:]}\n"
                                 f"--- sim ---\n{sim.text()[-1000:]}")
        if not wait_until(lambda: len(probe.read(out / "probe.csv")["cmd"]) >= min_commands, 120):
            raise AssertionError(f"the listener heard fewer than {min_commands} commands\n{node.text()[-2000:]}")
        time.sleep(drive_s)
        killed = sim.kill()
        time.sleep(1.0)
    finally:
        sim.stop()
        node_code = node.stop(60)
        listener.stop()
    rows = probe.read(out / "probe.csv")
    last_odom = max((r[0] for r in rows["odom"] if r[0] <= killed + 0.05), default=None)
    first_safe = next((r[0] for r in rows["cmd"] if r[0] > killed and all(v == 0.0 for v in r[1:])), None)
    return {"rows": rows, "killed": killed, "last_odom": last_odom, "first_safe": first_safe,
            "node_safe": node_safe_time(out / "node", killed), "node_log": node.text(), "node_code": node_code}


def node_safe_time(node_dir: Path, after: float) -> float | None:
    """Steady-clock time the node published its first 'odometry stale' safe command after `after`
    (the node's results.json event log; the event is stamped right after the publish call returns)."""
    import json

    path = Path(node_dir) / "results.json"
    if not path.exists():
        return None
    events = json.loads(path.read_text()).get("events", [])
    return next((e["t"] for e in events if e["reason"] == "odometry stale" and e["t"] > after), None)


def split_passthrough(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the tool's own arguments, the overrides after `--` that it passes on to robocl-ros)."""
    if "--" not in argv:
        return list(argv), []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]
