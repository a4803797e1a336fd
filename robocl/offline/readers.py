"""Recorded robot data -> time-aligned transitions, streamed (ROS 1 bags, ROS 2 bags, CSV).

A data path is one episode or a folder of episodes:
- a ROS 2 bag: a directory with `metadata.yaml` (MCAP or sqlite3 storage), or a bare `.mcap`/`.db3` file;
- a ROS 1 bag: a `.bag` file;
- a CSV file (`.csv`), one row per sample;
- a folder holding any of these (e.g. what `robocl-run record=DIR` writes): one episode per entry.

Messages are read in time order and never all at once. The state and command streams are aligned
on a grid of control ticks `t0 + k*period` (t0 = the first state's stamp): the state at a tick is
interpolated linearly between the bracketing state messages (angles on the circle), the command is the
latest one at or before the tick (zero-order hold, as a base holds cmd_vel), the regime label is the
latest label at or before it. A tick without a state within `max_state_gap` or a command within
`command_timeout` breaks the stream; transitions never span a break.

The state layout (`Mapping.layout`, from `robot.codec`) says how a bag's messages become vectors
(robocl.offline.rosmsg: `planar` and `quadrotor`, the ROS node's own Odometry mapping) and which
state entries are angles; `vector` robots have no ROS mapping and are read from CSV.
"""

from __future__ import annotations

import csv
import math
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from robocl.offline import rosmsg
from robocl.robots.spec import DEFAULT_NAMES

ROS2_SUFFIXES = (".mcap", ".db3")
FORMATS = ("auto", "ros1", "ros2", "csv")


class DataError(ValueError):
    """Unusable input data; the message is the one line the user sees."""


@dataclass
class Mapping:
    """Which topics / columns hold what (the `data:` config node), for a robot of state layout `layout`.

    Columns default to the layout's state and command names; `angle_dims` (state entries interpolated
    on the circle) defaults to the layout's angles (a vector robot's come from its spec)."""

    layout: str = "planar"  # planar | quadrotor | vector (robot.codec)
    state_topic: str = "/odom"
    command_topic: str = "/cmd_vel"
    regime_topic: str | None = "/robocl/regime"
    stamp: str = "header"  # header | log: which time a message counts at
    period: float = 0.2  # s, control period of the aligned stream
    max_state_gap: float = 0.5  # s, widest gap between state messages that is interpolated over
    command_timeout: float = 0.5  # s, a command older than this does not count
    time_column: str = "t"
    state_columns: list[str] | None = None
    command_columns: list[str] | None = None
    regime_column: str | None = "regime"
    format: str = "auto"
    angle_dims: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.layout not in rosmsg.LAYOUTS:
            raise DataError(f"layout {self.layout!r}: accepted {', '.join(rosmsg.LAYOUTS)}")
        default_state, default_command = DEFAULT_NAMES.get(self.layout, ((), ()))
        if self.state_columns is None:
            self.state_columns = list(default_state)
        if self.command_columns is None:
            self.command_columns = list(default_command)
        if self.angle_dims is None:
            self.angle_dims = rosmsg.angle_dims(self.layout)

    @property
    def period_ns(self) -> int:
        return int(round(self.period * 1e9))


@dataclass(frozen=True)
class Episode:
    name: str
    path: Path
    kind: str  # ros1 | ros2 | csv


@dataclass
class SourceInfo:
    """What a check of the file found (shown in the run log and results.json)."""

    episode: str
    kind: str
    start_ns: int
    end_ns: int
    state_messages: int
    command_messages: int
    has_regimes: bool
    meta: dict[str, Any] = field(default_factory=dict)

    def expected_ticks(self, period_ns: int) -> int:
        return int((self.end_ns - self.start_ns) // max(1, period_ns)) + 1


def _kind_of(path: Path, fmt: str) -> str | None:
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "ros2" if (path / "metadata.yaml").exists() else None
    suffix = path.suffix.lower()
    if suffix == ".bag":
        return "ros1"
    if suffix in ROS2_SUFFIXES:
        return "ros2"
    if suffix == ".csv":
        return "csv"
    return None


def discover(path: Path | str, fmt: str = "auto") -> list[Episode]:
    """The episodes at `path` (one file/bag, or every bag/CSV directly inside a folder)."""
    path = Path(path).expanduser()
    if fmt not in FORMATS:
        raise DataError(f"data.format={fmt}: accepted {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError(f"data={path}: no such file or directory")
    kind = _kind_of(path, fmt)
    if kind is not None:
        return [Episode(path.stem if path.is_file() else path.name, path, kind)]
    if path.is_dir():
        episodes = [Episode(p.stem if p.is_file() else p.name, p, k)
                    for p in sorted(path.iterdir()) if (k := _kind_of(p, "auto")) is not None]
        if not episodes:
            raise DataError(f"data={path}: a folder without ROS bags (.bag, .mcap, .db3, rosbag2 folders) "
                            "or .csv files")
        return episodes
    raise DataError(f"data={path}: unknown format (expected a .bag, .mcap, .db3 or .csv file, a rosbag2 folder, "
                    "or a folder of them; or set data.format=ros1|ros2|csv)")


# ---- sources: time-ordered events (t_ns, kind, value) --------------------------------------------
class BagSource:
    """ROS 1 or ROS 2 bag through rosbags' AnyReader (messages streamed in log-time order)."""

    def __init__(self, episode: Episode, mapping: Mapping) -> None:
        self.episode = episode
        self.m = mapping

    def _reader(self):
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        store = Stores.ROS1_NOETIC if self.episode.kind == "ros1" else Stores.ROS2_HUMBLE
        try:
            return AnyReader([self.episode.path], default_typestore=get_typestore(store))
        except Exception as exc:  # missing files, unreadable metadata
            raise self._error(exc) from None

    def _error(self, exc: Exception) -> DataError:
        what = "ROS 1 bag" if self.episode.kind == "ros1" else "ROS 2 bag"
        detail = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
        low = detail.lower()
        if "file magic is invalid" in low or "not a valid" in low:
            detail = f"not a bag file: {detail}"
        elif any(k in low for k in ("end magic", "damaged", "could not be read", "truncated", "unexpected end",
                                     "seems to be empty", "not enough data", "unpack requires", "malformed")):
            detail = f"truncated or damaged: {detail}"
        return DataError(f"data={self.episode.path}: not a readable {what} ({detail})")

    def _topics(self, reader) -> dict[str, tuple[str | None, int]]:
        return {name: (info.msgtype, info.msgcount) for name, info in reader.topics.items()}

    @contextmanager
    def _opened(self) -> Iterator[Any]:
        """The open rosbags reader (an unreadable file is one DataError line), closed afterwards."""
        reader = self._reader()
        try:
            reader.open()
        except Exception as exc:
            raise self._error(exc) from None
        try:
            yield reader
        finally:
            reader.close()

    def _layout(self) -> str:
        """The layout's ROS mapping; a vector robot (no Odometry mapping) is one line."""
        if self.m.layout not in rosmsg.BAG_LAYOUTS:
            raise DataError(f"data={self.episode.path}: robot.codec {self.m.layout} robots are read from CSV "
                            f"(data=FILE.csv, columns data.columns.state / data.columns.command); ROS bags are read "
                            f"for codec {' and '.join(rosmsg.BAG_LAYOUTS)} (nav_msgs/Odometry, Twist)")
        return self.m.layout

    def check(self) -> SourceInfo:
        self._layout()
        with self._opened() as reader:
            return self._check(reader)

    def _check(self, reader) -> SourceInfo:
        try:
            topics = self._topics(reader)
            where = f"data={self.episode.path}"
            listed = ", ".join(f"{n} ({t})" for n, (t, _) in sorted(topics.items())) or "none"

            def typed(kind: str, name: str, types: tuple[str, ...], required: bool = True) -> tuple[str, Any] | None:
                found = topics.get(name)
                if found is None and required:
                    raise DataError(f"{where}: no {kind} topic {name!r} (data.{kind}_topic); "
                                    f"topics in the bag: {listed}")
                if found is not None and found[0] not in types:
                    raise DataError(f"{where}: {kind} topic {name} is {found[0]}, expected {' or '.join(types)}")
                return found

            state = typed("state", self.m.state_topic, rosmsg.STATE_TYPES)
            command = typed("command", self.m.command_topic, rosmsg.COMMAND_TYPES)
            regime = (typed("regime", self.m.regime_topic, rosmsg.REGIME_TYPES, required=False)
                      if self.m.regime_topic else None)
            if state[1] < 2 or command[1] < 1:
                raise DataError(f"{where}: empty: {state[1]} state and {command[1]} command messages "
                                "(need at least 2 and 1)")
            meta: dict[str, Any] = {}
            from robocl.offline.recording import EPISODE_TOPIC

            if EPISODE_TOPIC in topics:
                import json

                conns = [c for c in reader.connections if c.topic == EPISODE_TOPIC]
                for conn, _, raw in reader.messages(connections=conns):
                    try:
                        meta = json.loads(reader.deserialize(raw, conn.msgtype).data)
                    except Exception:
                        meta = {}
                    break
            return SourceInfo(self.episode.name, self.episode.kind, reader.start_time, reader.end_time,
                              state[1], command[1], bool(regime and regime[1] > 0), meta)
        except DataError:
            raise
        except Exception as exc:
            raise self._error(exc) from None

    def events(self) -> Iterator[tuple[int, str, Any]]:
        layout = self._layout()
        with self._opened() as reader:
            kinds = {self.m.state_topic: "state", self.m.command_topic: "command"}
            if self.m.regime_topic:
                kinds[self.m.regime_topic] = "regime"
            conns = [c for c in reader.connections if c.topic in kinds]
            use_header = self.m.stamp == "header"
            deserialize = reader.deserialize
            fast = {id(c): self._fast_decoder(c) for c in conns}
            stream = reader.messages(connections=conns)
            while True:
                try:
                    conn, t_log, raw = next(stream)
                except StopIteration:
                    break
                except Exception as exc:  # truncated chunk, damaged index
                    raise self._error(exc) from None
                kind = kinds[conn.topic]
                decode = fast[id(conn)]
                if decode is not None:
                    try:
                        stamp, value = decode(raw)
                        yield (stamp if use_header and stamp is not None else t_log), kind, value
                        continue
                    except Exception:  # unexpected layout: the generic deserializer decides
                        pass
                try:
                    msg = deserialize(raw, conn.msgtype)
                except Exception as exc:  # bad CDR / ROS 1 payload
                    raise self._error(exc) from None
                t = (rosmsg.header_ns(msg) if use_header else None) or t_log
                if kind == "state":
                    yield t, kind, rosmsg.odometry_to_state(msg, layout)
                elif kind == "command":
                    yield t, kind, rosmsg.twist_to_command(msg, layout)
                else:
                    yield t, kind, str(msg.data)

    def _fast_decoder(self, conn):
        """The wire-format decoder for a standard message definition (checked by its hash), else None."""
        from rosbags.typesys import Stores, get_typestore

        ros1 = self.episode.kind == "ros1"
        if conn.msgtype not in (*rosmsg.STATE_TYPES, *rosmsg.COMMAND_TYPES):
            return None
        try:
            ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
            standard = ts.generate_msgdef(conn.msgtype)[1] if ros1 else ts.hash_rihs01(conn.msgtype)
        except Exception:
            return None
        return rosmsg.fast_decoder(conn.msgtype, ros1, msgdef_ok=bool(conn.digest) and conn.digest == standard,
                                   layout=self._layout())


def seconds_to_ns(text: str) -> int:
    """Exact decimal seconds -> integer nanoseconds (no float rounding at epoch-sized times)."""
    return int((Decimal(text.strip()) * 1_000_000_000).to_integral_value())


def ns_to_seconds(t_ns: int) -> str:
    sign = "-" if t_ns < 0 else ""
    sec, nsec = divmod(abs(int(t_ns)), 1_000_000_000)
    return f"{sign}{sec}.{nsec:09d}"


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class CsvSource:
    """One sample per row: time (s), state columns, command columns, optional regime column."""

    def __init__(self, episode: Episode, mapping: Mapping) -> None:
        self.episode = episode
        self.m = mapping

    def _open(self):
        try:
            return open(self.episode.path, newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise DataError(f"data={self.episode.path}: cannot read ({exc.strerror})") from None

    def _columns(self, header: list[str] | None) -> tuple[int, list[int], list[int], int | None]:
        where = f"data={self.episode.path}"
        if not header:
            raise DataError(f"{where}: empty CSV (expected a header row with {self.m.time_column}, "
                            f"{', '.join(self.m.state_columns)}, {', '.join(self.m.command_columns)})")
        names = [h.strip() for h in header]
        needed = [self.m.time_column, *self.m.state_columns, *self.m.command_columns]
        missing = [c for c in needed if c not in names]
        if missing:
            raise DataError(f"{where}: missing CSV column(s) {', '.join(missing)} (data.columns.*); "
                            f"columns: {', '.join(names)}")
        self._names = names
        idx = names.index
        regime = idx(self.m.regime_column) if self.m.regime_column and self.m.regime_column in names else None
        return (idx(self.m.time_column), [idx(c) for c in self.m.state_columns],
                [idx(c) for c in self.m.command_columns], regime)

    def check(self) -> SourceInfo:
        """One pass over the file before anything runs: every row complete, its cells numbers, its time not
        before the previous row's, at most one state and one command per time stamp (one line if not)."""
        where = f"data={self.episode.path}"
        with self._open() as fh:
            try:
                reader = csv.reader(fh)
                header = next(reader, None)
                ti, si, ci, ri = self._columns(header)
                need = max(ti, *si, *ci) + 1
                first = last = None
                states = commands = 0
                regimes = False
                at_last: dict[str, int] = {}  # the line of the state / command at the last time stamp
                for lineno, row in enumerate(reader, start=2):
                    if not row:
                        continue
                    if len(row) < need:
                        raise DataError(f"{where}: line {lineno} has {len(row)} of the header's {len(header)} fields "
                                        f"(a truncated or damaged row); expected {len(header)} comma-separated "
                                        "fields per row, empty where not measured")
                    t = self._time(row, ti, lineno)
                    if last is not None and t < last:
                        raise DataError(f"{where}: line {lineno}: time {ns_to_seconds(t)} is before the previous "
                                        f"row's {ns_to_seconds(last)} (the clock jumps backwards); expected rows in "
                                        f"time order (column {self.m.time_column} never decreasing)")
                    if t != last:
                        at_last = {}
                    first = t if first is None else first
                    last = t
                    for kind, cols in (("state", si), ("command", ci)):
                        if self._vector(row, cols, lineno) is None:
                            continue
                        if kind in at_last:
                            raise DataError(f"{where}: line {lineno} repeats line {at_last[kind]}'s time stamp "
                                            f"{ns_to_seconds(t)} with a second {kind}; expected at most one state "
                                            "and one command per time stamp")
                        at_last[kind] = lineno
                    states += "state" in at_last and at_last["state"] == lineno
                    commands += "command" in at_last and at_last["command"] == lineno
                    regimes = regimes or (ri is not None and len(row) > ri and bool(row[ri].strip()))
            except UnicodeDecodeError:
                raise DataError(f"data={self.episode.path}: not a text CSV file") from None
            except csv.Error as exc:
                raise DataError(f"data={self.episode.path}: malformed CSV ({exc})") from None
        if states < 2 or commands < 1:
            raise DataError(f"data={self.episode.path}: empty: {states} state rows and {commands} command rows "
                            "(need at least 2 and 1)")
        return SourceInfo(self.episode.name, "csv", first, last, states, commands, regimes)

    def _time(self, row: list[str], ti: int, lineno: int) -> int:
        try:
            return seconds_to_ns(row[ti])
        except (InvalidOperation, IndexError, ValueError):
            raise DataError(f"data={self.episode.path}: line {lineno}: bad time "
                            f"{row[ti] if ti < len(row) else ''!r} in column {self.m.time_column}; expected "
                            "seconds as a decimal number") from None

    def _vector(self, row: list[str], cols: list[int], lineno: int) -> np.ndarray | None:
        cells = [row[i].strip() if i < len(row) else "" for i in cols]
        if not all(cells):
            return None
        try:
            return np.array([float(c) for c in cells], dtype=np.float64)
        except ValueError:
            bad = next(k for k, c in enumerate(cells) if not _is_float(c))
            raise DataError(f"data={self.episode.path}: line {lineno}: column {self._names[cols[bad]]} is "
                            f"{cells[bad]!r}, not a number; expected decimal numbers in the state and command "
                            "columns (empty where not measured)") from None

    def events(self) -> Iterator[tuple[int, str, Any]]:
        with self._open() as fh:
            reader = csv.reader(fh)
            ti, si, ci, ri = self._columns(next(reader, None))
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                t = self._time(row, ti, lineno)
                if ri is not None and ri < len(row) and row[ri].strip():
                    yield t, "regime", row[ri].strip()
                state = self._vector(row, si, lineno)
                if state is not None:
                    yield t, "state", state
                command = self._vector(row, ci, lineno)
                if command is not None:
                    yield t, "command", command


def open_source(episode: Episode, mapping: Mapping) -> BagSource | CsvSource:
    return CsvSource(episode, mapping) if episode.kind == "csv" else BagSource(episode, mapping)


# ---- alignment -----------------------------------------------------------------------------------
@dataclass
class Tick:
    t: int
    state: np.ndarray | None
    command: np.ndarray | None
    regime: str | None


@dataclass
class AlignStats:
    ticks: int = 0
    missing_state: int = 0
    missing_command: int = 0
    out_of_order: int = 0


def _interp(a: np.ndarray, b: np.ndarray, w: float, angle_dims: tuple[int, ...]) -> np.ndarray:
    out = a + w * (b - a)
    for i in angle_dims:
        d = math.remainder(float(b[i] - a[i]), 2 * math.pi)
        out[i] = math.remainder(float(a[i]) + w * d, 2 * math.pi)
    return out


def align(events: Iterator[tuple[int, str, Any]], mapping: Mapping, stats: AlignStats | None = None,
          angle_dims: tuple[int, ...] | None = None) -> Iterator[Tick]:
    """Ticks `t0 + k*period` from time-ordered events (see the module docstring); angles (default: the
    mapping's `angle_dims`) are interpolated on the circle."""
    stats = stats if stats is not None else AlignStats()
    angle_dims = tuple(mapping.angle_dims or ()) if angle_dims is None else tuple(angle_dims)
    period = mapping.period_ns
    max_gap = int(round(mapping.max_state_gap * 1e9))
    timeout = int(round(mapping.command_timeout * 1e9))
    streams: dict[str, deque] = {"state": deque(), "command": deque(), "regime": deque()}
    states = streams["state"]
    pending: int | None = None

    def latest(d: deque, t: int):
        found = None
        for item in d:
            if item[0] > t:
                break
            found = item
        return found

    def make(t: int) -> Tick:
        stats.ticks += 1
        a = latest(states, t)
        state = None
        if a is not None and a[0] == t:
            state = a[1]
        elif a is not None:
            b = next((s for s in states if s[0] >= t), None)
            if b is not None and b[0] - a[0] <= max_gap:
                state = _interp(a[1], b[1], (t - a[0]) / (b[0] - a[0]), angle_dims)
        if state is not None and not math.isfinite(float(state.sum())):
            state = None
        if state is None:
            stats.missing_state += 1
        c = latest(streams["command"], t)
        command = c[1] if c is not None and t - c[0] <= timeout and math.isfinite(float(c[1].sum())) else None
        if command is None:
            stats.missing_command += 1
        r = latest(streams["regime"], t)
        return Tick(t, state, command, r[1] if r is not None else None)

    def prune(t: int) -> None:
        for d in streams.values():
            while len(d) >= 2 and d[1][0] <= t:
                d.popleft()

    for t, kind, value in events:
        d = streams[kind]
        if d and t < d[-1][0]:
            stats.out_of_order += 1
            continue
        d.append((t, value))
        if pending is None:
            if kind != "state":
                continue
            pending = t
        while pending < t and states[-1][0] >= pending:
            yield make(pending)
            pending += period
            prune(pending)
    while pending is not None and states and states[-1][0] >= pending:
        yield make(pending)
        pending += period
        prune(pending)


# ---- transitions and chunks ------------------------------------------------------------------------
@dataclass
class Block:
    """`n` transitions to evaluate plus up to k-1 lookahead transitions of the same contiguous segment."""

    times: np.ndarray  # (L,) ns
    states: np.ndarray  # (L+1, D)
    actions: np.ndarray  # (L, A)
    regimes: list[str | None]  # (L,)
    n: int
    segment: int
    start: int  # index of the first transition in the episode's transition stream


def transitions(ticks: Iterator[Tick]) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray, str | None]]:
    """(segment, t, s, a, s', regime) for consecutive usable ticks; the segment id grows at each break."""
    prev: Tick | None = None
    segment = 0
    broken = False
    for tick in ticks:
        if prev is not None and prev.state is not None and prev.command is not None and tick.state is not None:
            if broken:
                segment += 1
                broken = False
            yield segment, prev.t, prev.state, prev.command, tick.state, prev.regime
        elif prev is not None:
            broken = True
        prev = tick


def blocks(items: Iterator[tuple], chunk: int, lookahead: int, limit: int | None = None) -> Iterator[Block]:
    """Chunks of `chunk` transitions with `lookahead` extra ones (fewer at a segment's end)."""
    buf: list[tuple] = []
    seg = 0
    index = 0

    def emit(final: bool) -> Iterator[Block]:
        nonlocal buf, index
        while buf and (final or len(buf) >= chunk + lookahead):
            n = min(chunk, len(buf))
            part = buf[: n + lookahead]
            yield Block(times=np.array([p[1] for p in part], dtype=np.int64),
                        states=np.stack([p[2] for p in part] + [part[-1][4]]),
                        actions=np.stack([p[3] for p in part]),
                        regimes=[p[5] for p in part], n=n, segment=seg, start=index)
            index += n
            buf = buf[n:]

    count = 0
    for item in items:
        if limit is not None and count >= limit:
            break
        count += 1
        if item[0] != seg:
            yield from emit(final=True)
            seg = item[0]
        buf.append(item)
        yield from emit(final=False)
    yield from emit(final=True)


def export_csv(ticks: Iterator[Tick], path: Path, mapping: Mapping) -> int:
    """Write aligned ticks as CSV (the format CsvSource reads); returns the number of rows."""
    from robocl.utils.io import atomic_write

    rows = 0

    def write(fh) -> None:
        nonlocal rows
        import io

        text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
        w = csv.writer(text)
        w.writerow([mapping.time_column, *mapping.state_columns, *mapping.command_columns,
                    mapping.regime_column or "regime"])
        for tick in ticks:
            for name, value, cols in (("state", tick.state, mapping.state_columns),
                                      ("command", tick.command, mapping.command_columns)):
                if value is not None and len(value) != len(cols):
                    raise DataError(f"export: {len(value)} {name} entries but {len(cols)} data.columns.{name} "
                                    f"({', '.join(cols)})")
            s = [repr(float(v)) for v in tick.state] if tick.state is not None else [""] * len(mapping.state_columns)
            c = ([repr(float(v)) for v in tick.command] if tick.command is not None
                 else [""] * len(mapping.command_columns))
            w.writerow([ns_to_seconds(tick.t), *s, *c, tick.regime or ""])
            rows += 1
        text.flush()
        text.detach()

    atomic_write(Path(path), write)
    Path(path).chmod(0o644)  # a data file for others to read (temp files are created 0600)
    return rows
