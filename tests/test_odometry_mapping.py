"""One Odometry <-> state mapping for the ROS node and the bag readers (robocl/robots/odometry.py), both
layouts (planar UGV, quadrotor), ROS 1 and ROS 2, the wire-format fast path and rosbags' generic one;
a quadrotor run recorded with `robocl-run record=` and evaluated with `robocl-eval robot=quadrotor`.

Real code throughout: bags written with rosbags through BagRecorder, read back through
`readers.open_source(...).events()`, the CLIs run in-process with small models.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from robocl_ros import convert
from rosbags.highlevel import AnyReader

from robocl.offline import rosmsg
from robocl.offline.readers import BagSource, Episode, Mapping, align, discover, open_source, transitions
from robocl.offline.recording import BagRecorder, write_episode
from robocl.robots import odometry

T0 = 1_764_000_000_123_456_789
FORMATS = ["mcap", "ros1"]
# a tilted robot (roll 0.3, pitch -0.2, yaw 2.5: on a slope, driving and slipping), body twist with every component
TILTED = odometry.OdomFields(np.array([1.5, -2.0, 0.4]), odometry.euler_zyx_to_quat(0.3, -0.2, 2.5),
                             np.array([0.8, -0.15, 0.05]), np.array([0.1, -0.07, 0.6]))


def bag_path(tmp_path: Path, fmt: str, name: str = "b") -> Path:
    return tmp_path / (f"{name}.bag" if fmt == "ros1" else name)


def source(path: Path, layout: str) -> BagSource:
    (episode,) = discover(path)
    return open_source(episode, Mapping(layout=layout, period=0.04))


def generic_only(monkeypatch) -> None:
    """Readers take rosbags' generic deserializer for every message (as for a non-standard definition)."""
    monkeypatch.setattr(BagSource, "_fast_decoder", lambda self, conn: None)


def states_read(path: Path, layout: str) -> list[np.ndarray]:
    return [v for _, kind, v in source(path, layout).events() if kind == "state"]


# ---- the shared module ------------------------------------------------------------------------------
def test_node_and_readers_share_one_module_and_robocl_never_imports_the_bridge():
    for name in ("OdomFields", "quat_to_matrix", "euler_zyx_to_quat", "matrix_to_euler_zyx", "ugv_state",
                 "ugv_odometry", "quad_state", "quad_odometry"):
        assert getattr(convert, name) is getattr(odometry, name), name
    assert rosmsg.STATE_FROM_ODOMETRY == {"planar": odometry.ugv_state, "quadrotor": odometry.quad_state}
    assert rosmsg.STATE_FROM_NUMBERS == {"planar": odometry.ugv_state_from, "quadrotor": odometry.quad_state_from}
    code = ("import sys, robocl.robots.odometry, robocl.offline.readers, robocl.offline.recording, robocl.cli.eval, "
            "robocl.cli.recorded; bad = [m for m in sys.modules if m.split('.')[0] in ('robocl_ros', 'ros_bridge')]; "
            "assert not bad, bad; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_closed_form_equals_the_rotation_matrix():
    """The state functions avoid 3x3 arrays; their numbers are those of R = quat_to_matrix(q)."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        f = odometry.OdomFields(rng.normal(size=3), rng.normal(size=4), rng.normal(size=3), rng.normal(size=3))
        r = odometry.quat_to_matrix(f.quaternion)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
        v_world, w_world = r @ f.linear, r @ f.angular
        yaw = math.atan2(r[1, 0], r[0, 0])
        c, s = math.cos(yaw), math.sin(yaw)
        ugv = [*f.position[:2], yaw, c * v_world[0] + s * v_world[1], -s * v_world[0] + c * v_world[1], w_world[2]]
        assert np.allclose(odometry.ugv_state(f), ugv, atol=1e-12)
        quad = [*f.position, *v_world, *odometry.matrix_to_euler_zyx(r), *f.angular]
        assert np.allclose(odometry.quad_state(f), quad, atol=1e-12)
        # the readers' tuples give the same numbers as the node's arrays
        as_tuples = odometry.OdomFields(*(tuple(float(x) for x in v) for v in (f.position, f.quaternion, f.linear,
                                                                                f.angular)))
        assert np.array_equal(odometry.ugv_state(as_tuples), odometry.ugv_state(f))
        assert np.array_equal(odometry.quad_state(as_tuples), odometry.quad_state(f))
    # a broken quaternion stays visibly broken; a zero one too
    for q in ([math.nan, 0, 0, 1], [0, 0, 0, 0], [0, math.inf, 0, 1]):
        f = odometry.OdomFields(np.zeros(3), np.array(q, float), np.ones(3), np.ones(3))
        assert np.isnan(odometry.ugv_state(f)[2:]).all() and np.isnan(odometry.quad_state(f)[3:9]).all()


# ---- (a) the same state through the node and through a bag ------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("path_kind", ["fast", "generic"])
@pytest.mark.parametrize("layout,node_state", [("planar", convert.ugv_state), ("quadrotor", convert.quad_state)])
def test_tilted_odometry_gives_the_node_state_from_a_bag(fmt, path_kind, layout, node_state, tmp_path, monkeypatch):
    path = bag_path(tmp_path, fmt)
    with BagRecorder(path, fmt, layout=layout) as rec:
        rec.odometry(T0, TILTED)
        rec.odometry(T0 + 40_000_000, TILTED)
    if path_kind == "generic":
        generic_only(monkeypatch)
    expected = node_state(TILTED)
    got = states_read(path, layout)
    assert len(got) == 2 and all(np.array_equal(v, expected) for v in got), (got, expected)
    if layout == "planar":
        # the tilted base's planar motion, not its body axes: what the old bag reader (body twist) got wrong
        assert not np.isclose(expected[3], TILTED.linear[0]) and not np.isclose(expected[5], TILTED.angular[2])
    else:
        assert np.allclose(expected[6:9], [0.3, -0.2, 2.5]) and np.array_equal(expected[9:], TILTED.angular)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("layout", ["planar", "quadrotor"])
def test_state_odometry_state_round_trip_through_a_bag(fmt, layout, tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    n = 12
    if layout == "planar":
        states = np.c_[rng.uniform(-5, 5, (n, 2)), rng.uniform(-3, 3, n), rng.uniform(-1, 1, (n, 3))]
        commands = rng.uniform(-1, 1, (n - 1, 2))
        direct = [convert.ugv_state(convert.ugv_odometry(s)) for s in states]
    else:
        states = np.c_[rng.uniform(-5, 5, (n, 3)), rng.uniform(-1, 1, (n, 3)), rng.uniform(-1.2, 1.2, (n, 2)),
                       rng.uniform(-3, 3, n), rng.uniform(-1, 1, (n, 3))]
        commands = rng.uniform(-1, 1, (n - 1, 4))
        direct = [convert.quad_state(convert.quad_odometry(s)) for s in states]
    assert np.allclose(direct, states, atol=1e-12)
    path = bag_path(tmp_path, fmt)
    write_episode(path, states, commands, ["a"] * (n - 1), 0.04, t0_ns=T0, fmt=fmt, layout=layout)
    for generic in (False, True):
        if generic:
            generic_only(monkeypatch)
        events = list(source(path, layout).events())
        got = np.array([v for _, k, v in events if k == "state"])
        cmds = np.array([v for _, k, v in events if k == "command"])
        assert np.array_equal(got, np.array(direct))  # bit for bit the node's state
        assert np.array_equal(cmds, commands)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("layout", ["planar", "quadrotor"])
@pytest.mark.parametrize("stamped", [True, False])
def test_fast_decoders_match_the_generic_deserializer(fmt, layout, stamped, tmp_path):
    """Every standard message of both layouts: the wire decoder == rosbags' deserializer + the same mapping."""
    rng = np.random.default_rng(3)
    path = bag_path(tmp_path, fmt)
    dims = (6, 2) if layout == "planar" else (12, 4)
    with BagRecorder(path, fmt, stamped_commands=stamped, layout=layout) as rec:
        for k in range(5):
            t = T0 + k * 40_000_000
            rec.state(t, rng.normal(size=dims[0]))
            rec.odometry(t + 1, odometry.OdomFields(*(rng.normal(size=m) for m in (3, 4, 3, 3))))
            rec.command(t, rng.normal(size=dims[1]))
    src = source(path, layout)
    checked = 0
    with AnyReader([path]) as reader:
        for conn, _, raw in reader.messages():
            decode = src._fast_decoder(conn)
            if conn.msgtype == rosmsg.STRING:
                continue
            assert decode is not None  # standard definitions take the fast path
            msg = reader.deserialize(raw, conn.msgtype)
            stamp, value = decode(raw)
            ref = (rosmsg.odometry_to_state(msg, layout) if conn.msgtype == rosmsg.ODOMETRY
                   else rosmsg.twist_to_command(msg, layout))
            assert stamp == rosmsg.header_ns(msg) and np.array_equal(value, ref), (conn.msgtype, value, ref)
            assert len(value) == (dims[0] if conn.msgtype == rosmsg.ODOMETRY else dims[1])
            checked += 1
    assert checked == 15


def test_quadrotor_command_is_a_world_frame_velocity_setpoint(tmp_path):
    """mavros setpoint_velocity convention, as the node publishes it: linear.x/y/z, angular.z; frame odom."""
    path = tmp_path / "q"
    with BagRecorder(path, layout="quadrotor") as rec:
        rec.command(T0, np.array([0.1, -0.2, 0.3, 0.4]))
    with AnyReader([path]) as reader:
        ((conn, _, raw),) = list(reader.messages())
        msg = reader.deserialize(raw, conn.msgtype)
    assert conn.msgtype == rosmsg.TWIST_STAMPED and msg.header.frame_id == "odom"
    tw = msg.twist
    assert (tw.linear.x, tw.linear.y, tw.linear.z, tw.angular.x, tw.angular.y, tw.angular.z) == (
        0.1, -0.2, 0.3, 0.0, 0.0, 0.4)


def test_alignment_interpolates_the_quadrotor_angles_on_the_circle():
    ms = 1_000_000
    a = np.zeros(12)
    a[6:9] = [3.1, -3.1, 3.1]
    b = a.copy()
    b[6:9] = [-3.1, 3.1, -3.1]
    b[0] = 1.0
    events = [(0, "state", a), (0, "command", np.zeros(4)), (80 * ms, "state", b)]
    ticks = list(align(iter(events), Mapping(layout="quadrotor", period=0.04)))
    mid = ticks[1].state
    assert mid[0] == pytest.approx(0.5)
    assert np.allclose(np.abs(mid[6:9]), math.pi)  # across +-pi, not through 0
    assert Mapping(layout="quadrotor").state_columns[6:9] == ["roll", "pitch", "yaw"]
    assert Mapping(layout="quadrotor").command_columns == ["vx_cmd", "vy_cmd", "vz_cmd", "yaw_rate_cmd"]


# ---- (b) a recorded quadrotor run, evaluated offline --------------------------------------------------------
TINY = ["dynamics.pretrain.episodes=3", "dynamics.pretrain.steps=60", "dynamics.pretrain.epochs=3",
        "dynamics.ensemble_size=2", "dynamics.hidden_size=32", "runtime.progress=false", "runtime.threads=1"]


def cli(main, args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code), out.out, out.err


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_recorded_quadrotor_run_is_read_by_robocl_eval(tmp_path, capsys):
    from robocl.cli.eval import main as eval_main
    from robocl.cli.run import main as run_main

    rec = tmp_path / "rec"
    run = ["experiment=quad_continual", "task.name=hover", "seeds=[0]", "methods=[mppi]", "planner.population=32",
           "planner.horizon=4", "task.physics.payload_frac=0.6", f"record={rec}", *TINY]
    code, _, err = cli(run_main, [*run, f"hydra.run.dir={tmp_path / 'run'}"], capsys)
    assert code == 0, err
    bag = rec / "mppi_hover_s0"
    assert (bag / "metadata.yaml").exists()
    steps = json.loads((tmp_path / "run" / "results.json").read_text())["runs"][0]["steps"]
    with AnyReader([bag]) as reader:
        topics = {k: (v.msgtype, v.msgcount) for k, v in reader.topics.items()}
        meta = [json.loads(reader.deserialize(raw, c.msgtype).data) for c, _, raw in reader.messages()
                if c.topic == "/robocl/episode"]
    assert topics["/odom"] == (rosmsg.ODOMETRY, steps + 1) and topics["/cmd_vel"] == (rosmsg.TWIST_STAMPED, steps)
    assert meta[0]["robot"] == "quadrotor" and meta[0]["codec"] == "quadrotor" and meta[0]["dt"] == 0.04
    events = list(source(bag, "quadrotor").events())
    assert {len(v) for _, k, v in events if k == "state"} == {12} and {len(v) for _, k, v in events
                                                                       if k == "command"} == {4}
    assert [v for _, k, v in events if k == "regime"][:2] == ["nominal", "regime"]
    assert len(list(transitions(align(iter(events), Mapping(layout="quadrotor", period=0.04))))) == steps
    # a recording never overwrites: the same record= again is a usage error before any work
    code, _, err = cli(run_main, [*run, f"hydra.run.dir={tmp_path / 'run2'}"], capsys)
    assert code == 2 and "exists already" in one_line(err) and not (tmp_path / "run2").exists()

    run_dir = tmp_path / "eval"
    code, out, err = cli(eval_main, ["robot=quadrotor", f"data={rec}", "methods=[frozen]", *TINY,
                                     f"hydra.run.dir={run_dir}"], capsys)
    assert code == 0, err
    doc = json.loads((run_dir / "results.json").read_text())
    (row,) = doc["runs"]
    assert row["transitions"] == steps and math.isfinite(row["dyn_mse"]) and row["dyn_mse"] > 0
    assert row["changes_total"] >= 1  # the payload goes on (and off) mid-flight
    # the CSV export of a quadrotor bag has the robot's 12 + 4 columns
    csv_path = tmp_path / "q.csv"
    code, _, err = cli(eval_main, ["robot=quadrotor", f"data={bag}", f"export={csv_path}", *TINY,
                                   f"hydra.run.dir={tmp_path / 'x'}"], capsys)
    assert code == 0, err
    assert csv_path.read_text().splitlines()[0] == ("t,x,y,z,vx,vy,vz,roll,pitch,yaw,p,q,r,vx_cmd,vy_cmd,vz_cmd,"
                                                     "yaw_rate_cmd,regime")


# ---- (c) bad inputs: one line, exit 2 --------------------------------------------------------------------
VECTOR_ROBOT = """name: arm2
codec: vector
dt: 0.1
state: [q1, q2]
command: [u1]
action_low: [-1.0]
action_high: [1.0]
safe_action: [0.0]
"""


def test_bad_layouts_and_columns_are_one_line_exit_2(tmp_path, capsys):
    from robocl.cli.eval import main as eval_main

    bag = tmp_path / "ugv"
    write_episode(bag, np.zeros((4, 6)), np.zeros((3, 2)), ["a"] * 3, 0.2, t0_ns=T0)
    robot = tmp_path / "arm2.yaml"
    robot.write_text(VECTOR_ROBOT)
    run_dir = tmp_path / "run"
    code, _, err = cli(eval_main, [f"robot={robot}", f"data={bag}", "methods=[frozen]", f"hydra.run.dir={run_dir}"],
                       capsys)
    line = one_line(err)
    assert code == 2 and "vector robots are read from CSV" in line and str(bag) in line, line
    assert not run_dir.exists()
    csv_path = tmp_path / "ep.csv"
    csv_path.write_text("t,x,y,yaw,v_forward,v_lateral,yaw_rate,v_cmd,w_cmd\n0,0,0,0,0,0,0,0,0\n0.2,0,0,0,0,0,0,0,0\n")
    for args, words in ((["data.columns.state=[x,y]"], "data.columns.state=['x', 'y']: must name 6 columns"),
                        (["data.columns.command=[v_cmd,w_cmd,extra]"], "data.columns.command"),
                        (["robot=quadrotor"], "missing CSV column(s) z, vx"),  # the quad's 12 names: not in this CSV
                        (["robot=quadrotor", "data.period=0.02"], "robot.control_hz=50")):
        code, _, err = cli(eval_main, [f"data={csv_path}", *args, f"hydra.run.dir={run_dir}"], capsys)
        line = one_line(err)
        assert code == 2 and words in line and line.startswith("robocl-eval: error: "), (args, line)
        assert not run_dir.exists()
    # the readers' own guard (what the CLI turns into that line)
    from robocl.offline.readers import DataError

    with pytest.raises(DataError, match="read from CSV"):
        open_source(Episode("ugv", bag, "ros2"), Mapping(layout="vector")).check()
