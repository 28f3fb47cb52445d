"""``csilink up``: run the docker-compose.yml topology as local processes (no Docker needed).

    csilink up                         # start channel, bs, ue; Ctrl-C stops them
    csilink up --run                   # ... then run the one-shot runner and stop everything
    csilink up scenarios/sweep.yaml    # same, with that scenario (CSILINK_SCENARIO)
    csilink up --print                 # show the exact commands, start nothing

The rules (interpolation, port mapping, address rewriting, health, stop) are in
``csilink/launcher.py`` and docs/deploy.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

SCENARIO_VAR = "CSILINK_SCENARIO"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "up",
        help="run the docker-compose.yml services as local processes",
        description="Start the services of docker-compose.yml (same commands, settings, health checks "
        "and order) as local processes on free 127.0.0.1 ports; optionally run the one-shot runner.",
    )
    p.add_argument("scenario", nargs="?", metavar="SCENARIO",
                   help=f"scenario YAML for the runner (sets {SCENARIO_VAR}; implies --run)")
    p.add_argument("--run", action="store_true", help="run the one-shot service(s) (the runner), then stop")
    p.add_argument("--print", dest="dry_run", action="store_true",
                   help="print the exact commands, ports and health checks; start nothing")
    p.add_argument("-f", "--file", type=Path, default=None,
                   help="compose file (default: ./docker-compose.yml, else the one of the csilink checkout)")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="folder for the logs (default: runs/up-<time>-<pid> beside the compose file)")
    p.add_argument("--same-ports", action="store_true",
                   help="listen on the compose ports (50051...) instead of free ones")
    p.add_argument("--follow", action=argparse.BooleanOptionalAction, default=None,
                   help="echo the services' logs on stderr (default: on without --run, off with it)")
    p.add_argument("--health-timeout", type=float, default=None, metavar="S",
                   help="seconds each service may take to become healthy (default: its compose budget)")
    p.set_defaults(func=_run)


def find_compose_file(explicit: Path | None) -> Path:
    """The compose file to use: ``explicit``, ``./docker-compose.yml``, or the checkout's."""
    from shared.errors import InvalidInput

    if explicit is not None:
        if not explicit.is_file():
            raise InvalidInput(f"compose file not found: {explicit}")
        return explicit
    checkout = Path(__file__).resolve().parents[2]
    for cand in (Path.cwd() / "docker-compose.yml", checkout / "docker-compose.yml"):
        if cand.is_file():
            return cand
    raise InvalidInput("no docker-compose.yml here or in the csilink checkout: pass -f FILE")


def _scenario_variable(scenario: str, project_dir: Path) -> str:
    """The scenario path as the runner (working dir = project dir) must see it."""
    from shared.errors import InvalidInput

    path = Path(scenario)
    if not path.is_file():
        raise InvalidInput(f"scenario file not found: {scenario}")
    path = path.resolve()
    try:
        return str(path.relative_to(project_dir.resolve()))
    except ValueError:
        return str(path)


def _run(args: argparse.Namespace) -> int:
    from csilink import launcher as L
    from shared.errors import InvalidInput

    compose = find_compose_file(args.file).resolve()
    variables = {}
    run = args.run or args.scenario is not None
    if args.scenario is not None:
        variables[SCENARIO_VAR] = _scenario_variable(args.scenario, compose.parent)
    project = L.load_project(compose, variables)
    if run and not project.oneshots():
        raise InvalidInput(
            f"{compose.name}: no one-shot service (label {L.ONESHOT_LABEL}: {L.ONESHOT_VALUE}) to run"
        )
    if args.scenario is not None and not any(
        variables[SCENARIO_VAR] in project.services[n].command for n in project.oneshots()
    ):
        raise InvalidInput(f"{compose.name}: the one-shot command does not take ${{{SCENARIO_VAR}}}, "
                           "so a SCENARIO argument would be ignored")
    steps = L.make_plan(project, L.allocate_ports(project, args.same_ports), run=run)
    if args.dry_run:
        print(L.format_plan(project, steps))
        return 0

    run_dir = (args.run_dir or L.default_run_dir(project.project_dir)).resolve()
    follow = (not run) if args.follow is None else args.follow

    # SIGTERM/SIGHUP (a supervisor, a closed terminal) stop the services like Ctrl-C does.
    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    la = L.Launcher(project, steps, run_dir, follow=follow)
    try:
        la.say(f"{compose} -> logs in {os.path.relpath(run_dir)}")
        la.start_services(args.health_timeout)
        if run:
            return la.run_oneshots()
        print("all services up: " + ", ".join(
            f"{st.name} {addr}" for st in steps for addr in st.addresses.values()) + "  (Ctrl-C stops them)")
        sys.stdout.flush()
        died = la.wait_any_exit()
        raise L.LaunchError(f"{died} exited unexpectedly; last lines of its log:\n{la.tail(died or '')}")
    finally:
        # A second Ctrl-C must not cut the graceful stop short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            la.stop_all()
            la.close()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for s, h in old.items():
                signal.signal(s, h)
