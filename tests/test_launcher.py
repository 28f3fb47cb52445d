"""The native launcher (``csilink up``, csilink/launcher.py) and the compose file it reads.

Fast and Docker-free: parsing and validating docker-compose.yml, interpolation, the port and
address rewriting rule, dependency order, ``--print``; then real process lifecycles with a
tiny real gRPC health server (start order gated on health, one-shot run, SIGTERM then
SIGKILL, Ctrl-C), and ``csilink up`` on the project's own docker-compose.yml.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from csilink import healthcheck
from csilink import launcher as L
from csilink.cli import main as cli_main
from shared.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"

# A real gRPC server with the standard health service, nothing else. --require ADDR makes it
# refuse to start (exit 3) unless ADDR is already healthy: proof of the start order.
HSERVER = textwrap.dedent('''
    import argparse, signal, sys, time
    from concurrent import futures
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc
    from csilink.healthcheck import check

    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--require", default=None)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--ignore-term", action="store_true")
    ap.add_argument("--die", action="store_true")
    a = ap.parse_args()
    if a.require and not check(a.require).ok:
        print(f"required peer {a.require} is not healthy", flush=True)
        sys.exit(3)
    if a.die:
        print("dying on purpose", flush=True)
        sys.exit(4)
    time.sleep(a.delay)
    server = grpc.server(futures.ThreadPoolExecutor(2))
    hs = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    server.add_insecure_port(f"{a.host}:{a.port}")
    server.start()
    hs.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"serving on {a.host}:{a.port} peer={a.require}", flush=True)
    stop = []
    if a.ignore_term:
        signal.signal(signal.SIGTERM, lambda *_: print("ignoring SIGTERM", flush=True))
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.05)
    server.stop(0.5).wait()
    print("stopped cleanly", flush=True)
''')


def write_project(tmp_path: Path, compose: str) -> Path:
    (tmp_path / "hserver.py").write_text(HSERVER)
    path = tmp_path / "docker-compose.yml"
    path.write_text(textwrap.dedent(compose))
    return path


TOY = """
    services:
      a:
        command: [python, hserver.py, --host, 0.0.0.0, --port, "7001", --delay, "0.3"]
        ports: ["7001"]
        stop_grace_period: 5s
        healthcheck:
          test: [CMD, python, -m, csilink.healthcheck, "127.0.0.1:7001"]
          interval: 1s
          timeout: 1s
          retries: 10
      b:
        command: [python, hserver.py, --port, "7002", --require, "a:7001"]
        expose: ["7002"]
        environment: {PEER: "http://a:7001/x"}
        depends_on: {a: {condition: service_healthy}}
        healthcheck:
          test: [CMD, python, -m, csilink.healthcheck, "127.0.0.1:7002"]
          interval: 1s
          timeout: 1s
          retries: 10
      job:
        labels: {csilink.role: oneshot}
        command: [python, -m, csilink.healthcheck, "b:7002"]
        depends_on: {b: {condition: service_healthy}}
"""


# ------------------------------------------------------------------------- parsing


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert L.interpolate("${SET}-$SET-${UNSET}", env) == "v-v-"
    assert L.interpolate("${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET:-d}", env) == "d  d d"
    assert L.interpolate("cost $$5 and $${SET}", env) == "cost $5 and ${SET}"
    with pytest.raises(InvalidInput, match="required variable UNSET is missing: give it"):
        L.interpolate("${UNSET:?give it}", env, "f.yml")
    with pytest.raises(InvalidInput, match="required variable EMPTY"):
        L.interpolate("${EMPTY:?}", env)
    assert L.interpolate("${EMPTY?}", env) == ""
    with pytest.raises(InvalidInput, match=r"invalid interpolation .*\$\$"):
        L.interpolate("50$ off", env)


def test_durations() -> None:
    assert L.parse_duration("1m30s", "x") == 90.0
    assert L.parse_duration("500ms", "x") == 0.5
    assert L.parse_duration(3, "x") == 3.0
    with pytest.raises(InvalidInput, match="x: bad duration '10 parsecs'"):
        L.parse_duration("10 parsecs", "x")


def test_project_compose_file_is_valid_and_complete() -> None:
    project = L.load_project(COMPOSE, environ={})
    assert set(project.services) >= {"ue", "channel", "bs", "runner"}
    assert project.oneshots() == ["runner"]
    order = L.start_order(project)
    for name, svc in project.services.items():
        for dep in svc.depends_on:
            assert order.index(dep) < order.index(name), (dep, name)
    # The link is chained UE -> channel -> BS, each gated on the previous one's health.
    assert project.services["ue"].depends_on == {"channel": "service_healthy"}
    assert project.services["channel"].depends_on == {"bs": "service_healthy"}
    for name in project.long_running():
        svc = project.services[name]
        assert svc.command[:3] == ("csilink", "serve", name)
        assert len(svc.ports) == 1
        assert svc.healthcheck is not None
        assert svc.healthcheck.test[1:4] == ("-m", "csilink.healthcheck", f"127.0.0.1:{svc.ports[0]}")
        assert svc.stop_signal == signal.SIGTERM
    runner = project.services["runner"].command
    assert runner[:3] == ("csilink", "run", "scenarios/default.yaml")
    # CSILINK_SCENARIO reaches the runner's command line (that is how `csilink up SCENARIO` works).
    other = L.load_project(COMPOSE, variables={"CSILINK_SCENARIO": "scenarios/x.yaml"}, environ={})
    assert other.services["runner"].command[2] == "scenarios/x.yaml"


def test_plan_of_project_file_uses_only_local_addresses() -> None:
    project = L.load_project(COMPOSE, environ={})
    portmap = L.allocate_ports(project)
    assert len(set(portmap.values())) == len(portmap)
    steps = L.make_plan(project, portmap, run=True, python="/py")
    assert [s.name for s in steps][-1] == "runner"
    names = "|".join(project.services)
    for st in steps:
        text = " ".join([*st.argv, *(st.health or ()), *st.env.values()])
        assert not re.search(rf"(?<![\w.])({names}):\d", text), text
        assert "0.0.0.0" not in text
        assert st.argv[:3] == ("/py", "-m", "csilink.cli")
    by = {s.name: s for s in steps}
    for name in project.long_running():
        (port,) = project.services[name].ports
        local = portmap[name, port]
        assert by[name].argv[by[name].argv.index("--port") + 1] == str(local)
        assert by[name].health[-2:] == (f"127.0.0.1:{local}", "--quiet")
    assert by["channel"].argv[by["channel"].argv.index("--bs") + 1] == f"127.0.0.1:{portmap['bs', 50053]}"
    assert by["ue"].argv[by["ue"].argv.index("--channel") + 1] == f"127.0.0.1:{portmap['channel', 50052]}"
    same = L.allocate_ports(project, same_ports=True)
    assert same["ue", 50051] == 50051


def test_rewrite_rules() -> None:
    pm = {("bs", 50053): 41000, ("ue", 50051): 41001}
    names = ["bs", "ue", "channel"]

    def rw(arg: str, own: str = "ue") -> str:
        return L.rewrite_arg(arg, own, pm, names)

    assert rw("bs:50053") == "127.0.0.1:41000"
    assert rw("dns:///bs:50053") == "dns:///127.0.0.1:41000"
    assert rw("--peer=bs:50053") == "--peer=127.0.0.1:41000"
    assert rw("0.0.0.0:50051") == "127.0.0.1:41001"
    assert rw("localhost:50051") == "127.0.0.1:41001"
    assert rw("50051") == "41001" and rw("--port=50051") == "--port=41001"
    assert rw("50053") == "50053"  # bs's port, but this is ue's own command: left alone
    assert rw("0.0.0.0") == "127.0.0.1" and rw("--host=::") == "--host=127.0.0.1"
    assert rw("bsx:50053") == "bsx:50053" and rw("data/bs:50053") == "data/bs:50053"
    assert rw("10.1.2.3:50053") == "10.1.2.3:50053"
    assert rw("bs:50053,ue:50051") == "127.0.0.1:41000,127.0.0.1:41001"
    assert rw("serve") == "serve" and rw("bs") == "bs"
    with pytest.raises(InvalidInput, match="'bs:6000' names service 'bs' but 'bs' declares no port 6000"):
        rw("bs:6000")


def test_native_argv() -> None:
    assert L.native_argv(["csilink", "run", "x"], "/py") == ["/py", "-m", "csilink.cli", "run", "x"]
    assert L.native_argv(["python3", "-m", "m"], "/py") == ["/py", "-m", "m"]
    assert L.native_argv(["sh", "-c", "true"], "/py") == ["sh", "-c", "true"]


@pytest.mark.parametrize(("compose", "message"), [
    ("services: {a: {command: [x], depends_on: [b]}}", "service 'a' depends on unknown service 'b'"),
    ("services: {a: {command: [x], depends_on: [b]}, b: {command: [y], depends_on: [a]}}",
     "dependency cycle: a -> b -> a"),
    ("services: {a: {command: [x], depends_on: {b: {condition: service_healthy}}}, b: {command: [y]}}",
     "waits for 'b' to be healthy but 'b' has no healthcheck"),
    ("services: {a: {image: x}}", "services.a: no command"),
    ("services: {a: {command: [x], stop_signal: SIGWHAT}}", "services.a.stop_signal: unknown signal"),
    ("services: {a: {command: [x], ports: ['80-90']}}", "port ranges are not supported"),
    ("services: {a: {command: ['${NOPE:?set NOPE}']}}", "services.a.command: required variable NOPE"),
    ("version: '3'", "no `services:` mapping"),
    ("services: [", "not valid YAML"),
])
def test_bad_compose_files_are_named(tmp_path: Path, compose: str, message: str) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(compose)
    with pytest.raises(InvalidInput, match=re.escape(message)):
        L.load_project(path, environ={})


def test_dotenv_feeds_interpolation(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("# comment\nexport A='from dotenv'\nB=2\n")
    path = tmp_path / "docker-compose.yml"
    path.write_text("services: {s: {command: [echo, '${A}', '${B}']}}")
    project = L.load_project(path, environ={"B": "shell wins"})
    assert project.services["s"].command == ("echo", "from dotenv", "shell wins")
    (tmp_path / ".env").write_text("not a pair\n")
    with pytest.raises(InvalidInput, match=r"\.env:1: expected KEY=VALUE"):
        L.load_project(path, environ={})


def test_print_shows_exact_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["up", "--print", "-f", str(COMPOSE)]) == 0
    out = capsys.readouterr().out
    assert "-m csilink.cli serve bs --host 127.0.0.1 --port" in out
    assert "health:" in out and "SIGTERM" in out
    assert " run " not in out  # the one-shot runner only with --run / SCENARIO
    assert cli_main(["up", "--print", "--run", "-f", str(COMPOSE)]) == 0
    out = capsys.readouterr().out
    ue_addr = re.search(r"ue \(service; .*ports: 50051 -> (127\.0\.0\.1:\d+)\)", out).group(1)
    assert re.search(rf"-m csilink\.cli run scenarios/default\.yaml .*--ue {re.escape(ue_addr)}", out)


def test_scenario_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["up", "--print", "-f", str(COMPOSE), str(tmp_path / "missing.yaml")]) == 1
    assert "scenario file not found" in capsys.readouterr().err
    scen = tmp_path / "mine.yaml"
    scen.write_text("name: x\n")
    assert cli_main(["up", "--print", "-f", str(COMPOSE), str(scen)]) == 0
    assert f"-m csilink.cli run {scen}" in capsys.readouterr().out


def test_health_probe_names_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = L.free_ports(1)  # nothing listens there
    result = healthcheck.check(f"127.0.0.1:{port}", timeout=0.5)
    assert not result.ok and "UNAVAILABLE" in result.detail
    assert healthcheck.main([f"127.0.0.1:{port}", "--timeout", "0.5"]) == 1
    assert capsys.readouterr().err.startswith(f"unhealthy: 127.0.0.1:{port}: UNAVAILABLE")
    assert not healthcheck.check("no-port-here").ok
    assert "expected HOST:PORT" in healthcheck.check("no-port-here").detail


# ------------------------------------------------------------------------- running (toy project)


def test_up_run_starts_in_order_runs_oneshot_and_stops(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = write_project(tmp_path, TOY)
    run_dir = tmp_path / "run"
    assert cli_main(["up", "--run", "-f", str(path), "--run-dir", str(run_dir)]) == 0
    out, err = capsys.readouterr()
    # The one-shot's stdout is passed through unprefixed: the probe saw b healthy on its local port.
    assert re.search(r"^healthy: 127\.0\.0\.1:\d+: SERVING$", out, re.M), out
    assert re.search(r"a healthy at 127\.0\.0\.1:\d+ .*\n.*b healthy", err), err
    # b started only after a was healthy (it exits 3 otherwise), both stopped on SIGTERM, in reverse order.
    assert "serving on 127.0.0.1:" in (run_dir / "b.log").read_text()
    assert "stopped cleanly" in (run_dir / "a.log").read_text()
    assert "stopped cleanly" in (run_dir / "b.log").read_text()
    assert err.index("stopped b") < err.index("stopped a")
    combined = (run_dir / "up.log").read_text()
    assert re.search(r"^a   \| serving on 127\.0\.0\.1:\d+", combined, re.M)
    assert re.search(r"^job \| healthy: ", combined, re.M)


def test_environment_is_rewritten_and_passed(tmp_path: Path) -> None:
    project = L.load_project(write_project(tmp_path, TOY), environ={})
    pm = L.allocate_ports(project)
    (b,) = [s for s in L.make_plan(project, pm) if s.name == "b"]
    assert b.env == {"PEER": f"http://127.0.0.1:{pm['a', 7001]}/x"}


def test_service_dying_before_healthy_is_reported(tmp_path: Path) -> None:
    path = write_project(tmp_path, TOY.replace('--delay, "0.3"', "--die"))
    project = L.load_project(path, environ={})
    steps = L.make_plan(project, L.allocate_ports(project))
    with (L.Launcher(project, steps, tmp_path / "run") as la,
          pytest.raises(L.LaunchError, match=r"(?s)a exited with status 4 before it was healthy.*dying")):
        la.start_services()


def test_unhealthy_within_budget_is_reported(tmp_path: Path) -> None:
    path = write_project(tmp_path, TOY.replace('--delay, "0.3"', "--delay, '30'"))
    project = L.load_project(path, environ={})
    steps = L.make_plan(project, L.allocate_ports(project))
    t0 = time.monotonic()
    with (L.Launcher(project, steps, tmp_path / "run") as la,
          pytest.raises(L.LaunchError, match="a did not become healthy within 1 s")):
        la.start_services(health_timeout=1.0)
    assert time.monotonic() - t0 < 10


def test_sigkill_after_grace_period(tmp_path: Path) -> None:
    compose = TOY.replace('"0.3"]', '"0.3", --ignore-term]').replace("period: 5s", "period: 500ms")
    project = L.load_project(write_project(tmp_path, compose), environ={})
    steps = L.make_plan(project, L.allocate_ports(project))
    with L.Launcher(project, steps, tmp_path / "run") as la:
        la.start_services()
        pid_a = la.running["a"].proc.pid
        t0 = time.monotonic()
        codes = la.stop_all()
        assert 0.4 < time.monotonic() - t0 < 5
    assert codes == {"b": 0, "a": -signal.SIGKILL}
    assert "ignoring SIGTERM" in (tmp_path / "run" / "a.log").read_text()
    with pytest.raises(ProcessLookupError):
        os.kill(pid_a, 0)


def _spawn_up(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "csilink.cli", "up", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if re.search(pattern, line):
            return line
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no line matching {pattern!r}; stderr:\n{proc.stderr.read()}")


def _pids_in_log(log: str) -> list[int]:
    return [int(p) for p in re.findall(r"pid (\d+)", log)]


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    write_project(tmp_path, TOY)
    proc = _spawn_up(["--no-follow", "--run-dir", "run"], tmp_path)
    line = _wait_for_line(proc, r"^all services up", timeout=60)
    addrs = re.findall(r"127\.0\.0\.1:\d+", line)
    assert len(addrs) == 2 and all(healthcheck.check(a).ok for a in addrs)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "stopped b (SIGTERM, exit 0" in err and "stopped a (SIGTERM, exit 0" in err
    for a in addrs:
        assert not healthcheck.check(a, timeout=0.5).ok
    for pid in _pids_in_log((tmp_path / "run" / "up.log").read_text()):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# ------------------------------------------------------------------------- the real services


def test_up_runs_the_project_services_and_stops_them(tmp_path: Path) -> None:
    proc = _spawn_up(["-f", str(COMPOSE), "--no-follow", "--run-dir", str(tmp_path / "run")], ROOT)
    line = _wait_for_line(proc, r"^all services up", timeout=120)
    addrs = dict(re.findall(r"(\w+) (127\.0\.0\.1:\d+)", line))
    assert set(addrs) == {"bs", "channel", "ue"}
    for name, addr in addrs.items():
        assert healthcheck.check(addr).ok, name
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    for name in ("ue", "channel", "bs"):
        assert re.search(rf"stopped {name} \(SIGTERM, exit 0,", err), err
    assert err.index("stopped ue") < err.index("stopped channel") < err.index("stopped bs")
