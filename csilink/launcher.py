"""Native launcher: run the topology of ``docker-compose.yml`` as local processes.

``docker-compose.yml`` is the single source of truth of the deployment: each service's full
command line, environment, health check, dependencies and stop signal live there.
``csilink up`` reads that file (PyYAML) and runs the very same commands on this machine:

* **Interpolation** as Compose does it: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
  ``${VAR:?message}``, ``${VAR?message}``, ``$VAR`` and ``$$`` (a literal ``$``), from the
  process environment, then ``.env`` beside the compose file, then the launcher's own
  variables (``CSILINK_SCENARIO`` for ``csilink up SCENARIO``).
* **Ports**: each service declares the ports it listens on (``expose:`` or the container
  side of ``ports:``). Every (service, container port) pair is mapped to a free local port
  on 127.0.0.1 (or kept as is with ``same_ports``), so several launches and the test suite
  never collide.
* **Address rewriting** (the mapping rule), applied to every argument of ``command``,
  every ``environment`` value and the health-check test of a service S:

  1. ``NAME:PORT`` where NAME is a service of the file and PORT one of its declared ports
     becomes ``127.0.0.1:LOCAL``; it is recognized at the start of an argument or after
     ``//`` (URLs such as ``dns:///bs:50053``), ``=``, ``@`` or ``,``;
  2. ``0.0.0.0:PORT``, ``127.0.0.1:PORT``, ``localhost:PORT``, ``[::]:PORT`` with PORT a
     port of S itself becomes ``127.0.0.1:LOCAL``;
  3. an argument that is exactly a port of S (``--port 50051`` or ``--port=50051``) becomes
     LOCAL;
  4. a bind address ``0.0.0.0`` / ``::`` / ``[::]`` (whole argument or after ``=``) becomes
     ``127.0.0.1``: natively the services listen on loopback only.

  Peers must be addressed as one ``NAME:PORT`` token; a ``NAME:PORT`` left over whose port
  NAME does not declare is an error (it could never be reached natively).
* **Programs**: ``csilink ...`` runs as ``<this python> -m csilink.cli ...`` and
  ``python``/``python3`` as this interpreter, so the launched services use the same
  environment as the launcher, whatever ``PATH`` holds. Relative paths resolve against the
  compose file's folder, as they resolve against the image's ``/app`` in a container.
* **Order and health**: services start in ``depends_on`` order; a dependency with
  ``condition: service_healthy`` must pass its health check first. A check of the form
  ``python -m csilink.healthcheck ...`` runs in-process (same code, no interpreter start per
  probe); any other test runs as a subprocess. Natively the probe repeats every 0.2 s, and
  the deadline is Compose's own budget: ``start_period + retries * (interval + timeout)``.
* **One-shot services** carry the label ``csilink.role: oneshot`` (the ``runner``): they are
  run only when asked (``csilink up --run``), after the long-running services are healthy.
* **Stop**: in reverse start order, each process group gets the service's ``stop_signal``
  (default SIGTERM), then SIGKILL after ``stop_grace_period`` (default 10 s), as ``docker
  compose down`` does.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import yaml

from shared.errors import CsilinkError, InvalidInput

ONESHOT_LABEL = "csilink.role"
ONESHOT_VALUE = "oneshot"
LOOPBACK = "127.0.0.1"
_BIND_ANY = {"0.0.0.0", "::", "[::]"}
_LOCAL_HOSTS = {"0.0.0.0", "127.0.0.1", "localhost", "[::]"}
# Compose's defaults (compose-spec): interval 30s, timeout 30s, retries 3, start_period 0s.
_HC_DEFAULTS = {"interval": 30.0, "timeout": 30.0, "retries": 3, "start_period": 0.0}
_DEFAULT_GRACE = 10.0
POLL_S = 0.2


class LaunchError(CsilinkError):
    """A service failed to start, died, or never became healthy."""


# ------------------------------------------------------------------------- interpolation

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<invalid>))"
)


def interpolate(text: str, env: Mapping[str, str], where: str = "") -> str:
    """Substitute ``${VAR}``-style references in ``text`` the way Compose does.

    ``${VAR:-d}`` uses ``d`` when VAR is unset or empty, ``${VAR-d}`` only when unset;
    ``${VAR:?msg}`` / ``${VAR?msg}`` raise :class:`InvalidInput` with ``msg``; an unset
    VAR without default becomes "" (Compose warns and does the same). Defaults are not
    themselves interpolated (nested references are not supported).
    """

    def sub(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        if m.group("named"):
            return env.get(m.group("named"), "")
        name = m.group("braced")
        if name is None:
            raise InvalidInput(f"{where}: invalid interpolation in {text!r} (use $$ for a literal $)")
        op, arg, value = m.group("op"), m.group("arg") or "", env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?") and (value is None or (op == ":?" and not value)):
            raise InvalidInput(f"{where}: required variable {name} is missing: {arg or 'no value'}")
        return value or ""

    return _VAR.sub(sub, text)


def _interpolate_tree(node: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [_interpolate_tree(v, env, where) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, f"{where}.{k}") for k, v in node.items()}
    return node


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a Compose ``.env`` file (comments, blank lines, quotes allowed)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise InvalidInput(f"{path}:{n}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


# ------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class HealthCheck:
    """A Compose ``healthcheck``: ``test`` as an argv (CMD-SHELL becomes ``sh -c``)."""

    test: tuple[str, ...]
    interval: float
    timeout: float
    retries: int
    start_period: float

    @property
    def budget_s(self) -> float:
        """Seconds Docker would give the service to become healthy."""
        return self.start_period + self.retries * (self.interval + self.timeout)


@dataclass(frozen=True)
class Service:
    """One service of the compose file, after interpolation and validation."""

    name: str
    command: tuple[str, ...]
    environment: dict[str, str]
    depends_on: dict[str, str]  # dependency -> condition
    ports: tuple[int, ...]  # container ports it listens on
    healthcheck: HealthCheck | None
    stop_signal: signal.Signals
    stop_grace: float
    oneshot: bool


@dataclass
class Project:
    """The parsed compose file: services in file order plus where it came from."""

    path: Path
    services: dict[str, Service]

    @property
    def project_dir(self) -> Path:
        return self.path.parent

    def long_running(self) -> list[str]:
        return [n for n, s in self.services.items() if not s.oneshot]

    def oneshots(self) -> list[str]:
        return [n for n, s in self.services.items() if s.oneshot]


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any, where: str) -> float:
    """Compose duration (``"1m30s"``, ``"500ms"``, ``"2s"``, or a number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise InvalidInput(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise InvalidInput(f"{where}: bad duration {value!r} (expected e.g. 500ms, 2s, 1m30s)")
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def _argv(value: Any, where: str) -> tuple[str, ...]:
    """A Compose command (list, or a string split like a shell would) as an argv tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(shlex.split(value))
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v) for v in value)
    raise InvalidInput(f"{where}: expected a string or a list of strings, got {value!r}")


def _environment(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    if isinstance(value, list):
        out = {}
        for item in value:
            key, _, val = str(item).partition("=")
            out[key] = val
        return out
    raise InvalidInput(f"{where}: expected a mapping or a list of KEY=VALUE, got {value!r}")


def _container_port(spec: Any, where: str) -> int:
    """Container port of one ``expose``/``ports`` entry (``"50051"``, ``"1:2"``, ``"h:1:2/tcp"``,
    ``{target: 2}``)."""
    if isinstance(spec, dict):
        spec = spec.get("target")
    text = str(spec).split("/", 1)[0].rsplit(":", 1)[-1]
    if "-" in text:
        raise InvalidInput(f"{where}: port ranges are not supported by the native launcher: {spec!r}")
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InvalidInput(f"{where}: bad port {spec!r}")
    return int(text)


def _healthcheck(value: Any, where: str) -> HealthCheck | None:
    if value is None or value.get("disable"):
        return None
    test = value.get("test")
    if isinstance(test, str):
        argv: tuple[str, ...] = ("sh", "-c", test)
    elif isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL", "NONE"):
        if test[0] == "NONE":
            return None
        argv = tuple(str(t) for t in test[1:]) if test[0] == "CMD" else ("sh", "-c", " ".join(test[1:]))
    else:
        raise InvalidInput(f"{where}.test: expected a string or [CMD, ...] / [CMD-SHELL, ...], got {test!r}")
    if not argv:
        raise InvalidInput(f"{where}.test: empty command")
    durations = {
        k: parse_duration(value.get(k, _HC_DEFAULTS[k]), f"{where}.{k}")
        for k in ("interval", "timeout", "start_period")
    }
    retries = value.get("retries", _HC_DEFAULTS["retries"])
    if not isinstance(retries, int) or retries < 1:
        raise InvalidInput(f"{where}.retries: expected a positive integer, got {retries!r}")
    return HealthCheck(test=argv, retries=retries, **durations)


def _signal(value: Any, where: str) -> signal.Signals:
    if value is None:
        return signal.SIGTERM
    name = str(value).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return signal.Signals[name]
    except KeyError:
        raise InvalidInput(f"{where}: unknown signal {value!r}") from None


def _depends_on(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, list):
        return {str(v): "service_started" for v in value}
    if isinstance(value, dict):
        out = {}
        for dep, opts in value.items():
            cond = (opts or {}).get("condition", "service_started")
            if cond not in ("service_started", "service_healthy", "service_completed_successfully"):
                raise InvalidInput(f"{where}.{dep}.condition: unknown condition {cond!r}")
            out[str(dep)] = cond
        return out
    raise InvalidInput(f"{where}: expected a list or a mapping, got {value!r}")


def _service(name: str, raw: Any, where: str) -> Service:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: expected a mapping")
    command = _argv(raw.get("entrypoint"), f"{where}.entrypoint")
    command += _argv(raw.get("command"), f"{where}.command")
    if not command:
        raise InvalidInput(
            f"{where}: no command: the native launcher runs the compose `command:` (images give none)"
        )
    ports = [_container_port(p, f"{where}.expose") for p in raw.get("expose") or []]
    ports += [_container_port(p, f"{where}.ports") for p in raw.get("ports") or []]
    labels = _environment(raw.get("labels"), f"{where}.labels")
    return Service(
        name=name,
        command=command,
        environment=_environment(raw.get("environment"), f"{where}.environment"),
        depends_on=_depends_on(raw.get("depends_on"), f"{where}.depends_on"),
        ports=tuple(dict.fromkeys(ports)),
        healthcheck=_healthcheck(raw.get("healthcheck"), f"{where}.healthcheck"),
        stop_signal=_signal(raw.get("stop_signal"), f"{where}.stop_signal"),
        stop_grace=parse_duration(raw.get("stop_grace_period", _DEFAULT_GRACE), f"{where}.stop_grace_period"),
        oneshot=labels.get(ONESHOT_LABEL) == ONESHOT_VALUE,
    )


def load_project(path: str | Path, variables: Mapping[str, str] | None = None,
                 environ: Mapping[str, str] | None = None) -> Project:
    """Parse and validate a compose file.

    Interpolation variables: ``environ`` (default ``os.environ``) over ``.env`` beside the
    file; ``variables`` (the launcher's own, e.g. ``CSILINK_SCENARIO``) override both.
    Raises :class:`InvalidInput` naming the file, the key and the problem.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise InvalidInput(f"compose file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict) or not doc["services"]:
        raise InvalidInput(f"{path}: no `services:` mapping")
    env = {**read_dotenv(path.parent / ".env"), **(os.environ if environ is None else environ),
           **(variables or {})}
    name = path.name
    services = {}
    for sname, raw in doc["services"].items():
        raw = _interpolate_tree(raw, env, f"{name}: services.{sname}")
        services[str(sname)] = _service(str(sname), raw, f"{name}: services.{sname}")
    for s in services.values():
        for dep in s.depends_on:
            if dep not in services:
                raise InvalidInput(f"{name}: service {s.name!r} depends on unknown service {dep!r}")
            if services[dep].oneshot:
                raise InvalidInput(f"{name}: service {s.name!r} depends on the one-shot service {dep!r}")
            if s.depends_on[dep] == "service_healthy" and services[dep].healthcheck is None:
                raise InvalidInput(
                    f"{name}: service {s.name!r} waits for {dep!r} to be healthy "
                    f"but {dep!r} has no healthcheck"
                )
    project = Project(path=path, services=services)
    start_order(project)  # reject cycles early
    return project


def start_order(project: Project, names: Iterable[str] | None = None) -> list[str]:
    """Services (``names`` and their dependencies, default: all) in dependency order.

    Ties keep the file order, so the order is deterministic. A cycle raises InvalidInput.
    """
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(n: str, chain: list[str]) -> None:
        if state.get(n) == "done":
            return
        if state.get(n) == "visiting":
            cycle = " -> ".join([*chain[chain.index(n):], n])
            raise InvalidInput(f"{project.path.name}: dependency cycle: {cycle}")
        state[n] = "visiting"
        for dep in project.services[n].depends_on:
            visit(dep, [*chain, n])
        state[n] = "done"
        order.append(n)

    for n in project.services if names is None else names:
        if n not in project.services:
            raise InvalidInput(f"{project.path.name}: no service {n!r} (have: {', '.join(project.services)})")
        visit(n, [])
    return order


# ------------------------------------------------------------------------- ports and rewriting

PortMap = dict[tuple[str, int], int]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all held open until all are chosen)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def allocate_ports(project: Project, same_ports: bool = False) -> PortMap:
    """Map every (service, container port) to a local port: a fresh free one, or the same."""
    keys = [(s.name, p) for s in project.services.values() for p in s.ports]
    if same_ports:
        return {k: k[1] for k in keys}
    return dict(zip(keys, free_ports(len(keys)), strict=True))


# HOST:PORT at the start of an argument or after "//" (URL), "=", "@" or "," (lists).
_HOSTPORT = re.compile(
    r"(?:^|(?<=//)|(?<=[=@,]))(?P<host>\[::\]|[A-Za-z0-9_][A-Za-z0-9_.\-]*):(?P<port>\d+)(?!\d)"
)


def rewrite_arg(arg: str, service: str, portmap: PortMap, services: Iterable[str]) -> str:
    """Apply the address-rewriting rules (module docstring) to one argument of ``service``."""
    names = set(services)

    def hostport(m: re.Match[str]) -> str:
        host, port = m.group("host"), int(m.group("port"))
        if host in names and (host, port) in portmap:
            return f"{LOOPBACK}:{portmap[host, port]}"
        if host in _LOCAL_HOSTS and (service, port) in portmap:
            return f"{LOOPBACK}:{portmap[service, port]}"
        if host in names:
            raise InvalidInput(
                f"service {service!r}: {m.group(0)!r} names service {host!r} but {host!r} declares no port "
                f"{port} (list it under its `ports:` or `expose:`)"
            )
        return m.group(0)

    prefix, sep, value = arg.partition("=") if arg.startswith("-") and "=" in arg else ("", "", arg)
    if value.isdigit() and (service, int(value)) in portmap:
        return f"{prefix}{sep}{portmap[service, int(value)]}"
    if value in _BIND_ANY:
        return f"{prefix}{sep}{LOOPBACK}"
    return prefix + sep + _HOSTPORT.sub(hostport, value)


def native_argv(argv: Iterable[str], python: str = sys.executable) -> list[str]:
    """``csilink ...`` -> ``python -m csilink.cli ...``; ``python``/``python3`` -> ``python``."""
    argv = list(argv)
    head = argv[0] if argv else ""
    if head == "csilink":
        return [python, "-m", "csilink.cli", *argv[1:]]
    if re.fullmatch(r"python(3(\.\d+)?)?", head):
        return [python, *argv[1:]]
    return argv


# ------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Step:
    """One service, ready to run natively: the exact argv, its extra environment, its probe."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str]
    health: tuple[str, ...] | None
    health_budget_s: float
    waits_for: dict[str, str]
    stop_signal: signal.Signals
    stop_grace: float
    oneshot: bool
    addresses: dict[int, str] = field(default_factory=dict)  # container port -> local address


def make_plan(project: Project, portmap: PortMap, run: bool = False,
              python: str = sys.executable) -> list[Step]:
    """Steps in start order: all long-running services, then (``run``) the one-shots."""
    names = project.long_running() + (project.oneshots() if run else [])
    order = start_order(project, names)
    steps = []
    for n in order:
        s = project.services[n]

        def rw(a: str, _n: str = n) -> str:
            return rewrite_arg(a, _n, portmap, project.services)

        hc = s.healthcheck
        steps.append(Step(
            name=n,
            argv=tuple(native_argv([rw(a) for a in s.command], python)),
            env={k: rw(v) for k, v in s.environment.items()},
            health=tuple(native_argv([rw(a) for a in hc.test], python)) if hc else None,
            health_budget_s=hc.budget_s if hc else 0.0,
            waits_for=dict(s.depends_on),
            stop_signal=s.stop_signal,
            stop_grace=s.stop_grace,
            oneshot=s.oneshot,
            addresses={p: f"{LOOPBACK}:{portmap[n, p]}" for p in s.ports},
        ))
    return steps


def format_plan(project: Project, steps: list[Step]) -> str:
    """Human-readable, copy-pasteable plan (``csilink up --print``)."""
    lines = [f"# csilink up: {project.path}", f"# working directory: {project.project_dir}"]
    for i, st in enumerate(steps, 1):
        kind = "one-shot" if st.oneshot else "service"
        waits = ", ".join(f"{d} ({c.removeprefix('service_')})" for d, c in st.waits_for.items()) or "-"
        ports = ", ".join(f"{p} -> {a}" for p, a in st.addresses.items()) or "-"
        lines.append(f"[{i}] {st.name} ({kind}; waits for: {waits}; ports: {ports})")
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in st.env.items())
        lines.append("    " + (f"env {env} " if env else "") + shlex.join(st.argv))
        if st.health:
            lines.append(f"    health: {shlex.join(st.health)}  (budget {st.health_budget_s:g} s)")
        if not st.oneshot:
            lines.append(f"    stop: {st.stop_signal.name}, then SIGKILL after {st.stop_grace:g} s")
    return "\n".join(lines)


# ------------------------------------------------------------------------- running


def _health_probe(argv: tuple[str, ...], cwd: Path, env: Mapping[str, str]) -> Callable[[], bool]:
    """A zero-argument probe returning True when healthy. ``python -m csilink.healthcheck``
    runs in-process (same code, no interpreter start per probe); anything else as a process."""
    if len(argv) >= 3 and argv[1:3] == ("-m", "csilink.healthcheck"):
        from csilink import healthcheck

        try:
            args = healthcheck.build_parser().parse_args(list(argv[3:]))
        except SystemExit:
            raise InvalidInput(
                f"bad health check {shlex.join(argv)}: see `python -m csilink.healthcheck -h`"
            ) from None
        return lambda: healthcheck.check(args.address, args.service, args.timeout).ok

    def run() -> bool:
        try:
            return subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    return run


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGTERM the child if the launcher dies without cleaning up (SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Pump(threading.Thread):
    """Copies a child's output lines to its log file, the combined log and optionally a stream."""

    def __init__(self, name: str, src: IO[bytes], log: IO[str], combined: IO[str], lock: threading.Lock,
                 prefix: str, echo: IO[str] | None = None, echo_prefixed: bool = True) -> None:
        super().__init__(name=f"pump-{name}", daemon=True)
        self.src, self.log, self.combined, self.lock = src, log, combined, lock
        self.prefix, self.echo, self.echo_prefixed = prefix, echo, echo_prefixed

    def run(self) -> None:
        for raw in iter(self.src.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.lock:
                self.log.write(line + "\n")
                self.log.flush()
                self.combined.write(f"{self.prefix}{line}\n")
                self.combined.flush()
                if self.echo is not None:
                    self.echo.write(f"{self.prefix}{line}\n" if self.echo_prefixed else line + "\n")
                    self.echo.flush()
        self.src.close()


@dataclass
class _Running:
    step: Step
    proc: subprocess.Popen[bytes]
    log_path: Path
    pumps: list[_Pump]
    started: float


class Launcher:
    """Runs a plan: start in order, wait on health, run one-shots, stop gracefully.

    Use as a context manager so every process is stopped on the way out, whatever happens::

        with Launcher(project, steps, run_dir) as la:
            la.start_services()
            rc = la.run_oneshots()
    """

    def __init__(self, project: Project, steps: list[Step], run_dir: Path, follow: bool = False,
                 out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.project, self.steps, self.run_dir, self.follow = project, steps, run_dir, follow
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._width = max((len(s.name) for s in steps), default=4)
        run_dir.mkdir(parents=True, exist_ok=True)
        self._combined = open(run_dir / "up.log", "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._logs: list[IO[str]] = []

    # -- lifecycle
    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
        self.close()

    def close(self) -> None:
        for f in [*self._logs, self._combined]:
            with contextlib.suppress(OSError):
                f.close()
        self._logs.clear()

    def say(self, msg: str) -> None:
        with self._lock:
            self.err.write(f"csilink up: {msg}\n")
            self.err.flush()
            self._combined.write(f"{'up':<{self._width}} | {msg}\n")
            self._combined.flush()

    # -- processes
    def _spawn(self, step: Step) -> _Running:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **step.env}
        log_path = self.run_dir / f"{step.name}.log"
        log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        proc = subprocess.Popen(
            step.argv, cwd=self.project.project_dir, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE if step.oneshot else subprocess.STDOUT,
            start_new_session=True,  # own process group: Ctrl-C reaches the launcher, which orders the stop
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - async-signal-safe enough: one prctl call
        )
        prefix = f"{step.name:<{self._width}} | "
        args = (step.name, log, self._combined, self._lock, prefix)
        if step.oneshot:  # the one-shot's stdout is the result: echoed unprefixed, stderr prefixed
            pumps = [_Pump(args[0], proc.stdout, *args[1:], echo=self.out, echo_prefixed=False),
                     _Pump(args[0], proc.stderr, *args[1:], echo=self.err)]
        else:
            pumps = [_Pump(args[0], proc.stdout, *args[1:], echo=self.err if self.follow else None)]
        for p in pumps:
            p.start()
        return _Running(step, proc, log_path, pumps, time.monotonic())

    def tail(self, name: str, n: int = 15) -> str:
        r = self.running.get(name)
        if r is None:
            return ""
        for p in r.pumps:
            p.join(timeout=1.0)
        try:
            lines = r.log_path.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return ""
        return "\n".join(f"    {line}" for line in lines)

    def _wait_healthy(self, step: Step, budget_s: float | None) -> None:
        r = self.running[step.name]
        env = {**os.environ, **step.env}
        probe = _health_probe(step.health, self.project.project_dir, env)  # type: ignore[arg-type]
        budget = step.health_budget_s if budget_s is None else budget_s
        deadline = time.monotonic() + budget
        while True:
            if r.proc.poll() is not None:
                raise LaunchError(
                    f"{step.name} exited with status {r.proc.returncode} before it was healthy; "
                    f"last lines of {r.log_path}:\n{self.tail(step.name)}"
                )
            if probe():
                return
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"{step.name} did not become healthy within {budget:g} s "
                    f"({shlex.join(step.health or ())}); "
                    f"last lines of {r.log_path}:\n{self.tail(step.name)}"
                )
            time.sleep(POLL_S)

    def start_services(self, health_timeout: float | None = None) -> None:
        """Start every long-running step in order; wait for health where a dependant needs it
        (and for every service with a health check, so "up" means "all healthy")."""
        for step in self.steps:
            if step.oneshot:
                continue
            self._check_deps(step)
            t0 = time.monotonic()
            self.running[step.name] = self._spawn(step)
            if step.health:
                self._wait_healthy(step, health_timeout)
                self.say(f"{step.name} healthy at {', '.join(step.addresses.values()) or '-'} "
                         f"({time.monotonic() - t0:.1f} s, pid {self.running[step.name].proc.pid})")
            else:
                self.say(f"{step.name} started (pid {self.running[step.name].proc.pid}, no health check)")

    def _check_deps(self, step: Step) -> None:
        for dep in step.waits_for:
            r = self.running.get(dep)
            if r is None or r.proc.poll() is not None:
                raise LaunchError(f"{step.name} needs {dep}, which is not running")

    def run_oneshots(self) -> int:
        """Run each one-shot step to completion; returns the first non-zero exit status (or 0)."""
        rc = 0
        for step in self.steps:
            if not step.oneshot:
                continue
            self._check_deps(step)
            self.say(f"running {step.name}: {shlex.join(step.argv)}")
            r = self.running[step.name] = self._spawn(step)
            code = r.proc.wait()
            for p in r.pumps:
                p.join(timeout=5.0)
            self.say(f"{step.name} exited with status {code} ({time.monotonic() - r.started:.1f} s)")
            del self.running[step.name]
            rc = rc or code
        return rc

    def wait_any_exit(self, stop: threading.Event | None = None) -> str | None:
        """Block until a long-running service exits (returns its name) or ``stop`` is set."""
        while stop is None or not stop.is_set():
            for name, r in self.running.items():
                if r.proc.poll() is not None:
                    return name
            time.sleep(POLL_S)
        return None

    def stop_all(self) -> dict[str, int]:
        """Stop in reverse start order: stop_signal to the process group, SIGKILL after the
        grace period. Returns each service's exit status (negative: killed by that signal)."""
        codes: dict[str, int] = {}
        for name in reversed(list(self.running)):
            r = self.running.pop(name)
            codes[name] = self._stop_one(r)
        return codes

    def _stop_one(self, r: _Running) -> int:
        st, proc = r.step, r.proc
        if proc.poll() is None:
            t0 = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, st.stop_signal)
            try:
                proc.wait(timeout=st.stop_grace)
                self.say(f"stopped {st.name} ({st.stop_signal.name}, exit {proc.returncode}, "
                         f"{time.monotonic() - t0:.1f} s)")
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                self.say(f"killed {st.name}: no exit {st.stop_grace:g} s after {st.stop_signal.name}")
        else:
            self.say(f"{st.name} had already exited with status {proc.returncode}")
        # Anything the service left in its group (workers) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for p in r.pumps:
            p.join(timeout=2.0)
        return proc.returncode


def default_run_dir(project_dir: Path) -> Path:
    """``runs/up-YYYYmmdd-HHMMSS-PID`` under the project (``runs/`` is git-ignored)."""
    return project_dir / "runs" / f"up-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
