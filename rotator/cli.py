"""The ``rotator`` command: parse argv, load settings, delegate, return the exit code.

Thin on purpose: every decision lives in ``rotator.plan`` and the runner, every object is built
by ``rotator.app``. ``--help`` imports nothing but the standard library and
``rotator.variables`` (no pydantic, structlog, httpx, apscheduler or prometheus_client): every
other import happens inside the command that needs it.
Exit codes (README): 0 done, 1 something left undone, 2 configuration or usage error (one
line per problem, no traceback), 3 nothing could be done and nothing changed; 141 (quietly)
when standard output was closed before the command finished writing it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from types import FrameType
from typing import Any, NamedTuple, TextIO

from rotator import __version__
from rotator.errors import ApiError, ConfigError, RotatorError

EXIT_OK, EXIT_UNDONE, EXIT_CONFIG, EXIT_UNUSABLE = 0, 1, 2, 3
#: 128 + SIGPIPE: what a shell reports for a command whose reader went away (``| head``).
EXIT_STDOUT_CLOSED = 141

_ENV_HELP = (
    "Configured by ROTATOR_* environment variables alone: `rotator COMMAND --help` lists the "
    "ones each command reads, with defaults. Documentation: "
    "https://github.com/key-rotator/key-rotator#readme"
)
_NO_ENVIRONMENT = (
    "Reads no ROTATOR_* variable (one that is set but unknown is still an error).\n\n"
    "Documentation: https://github.com/key-rotator/key-rotator#readme"
)


def _print_problems(problems: Sequence[str], stream: TextIO) -> None:
    print("rotator: configuration error:", file=stream)
    for problem in problems:
        print(f"  {problem}", file=stream)


def _load(environ: dict[str, str]) -> Any:
    from rotator.logging import configure  # noqa: PLC0415 - keeps --help fast
    from rotator.settings import load_settings  # noqa: PLC0415

    settings = load_settings(environ)
    configure(
        log_format=settings.log_format,
        level=settings.log_level,
        colors=wants_colour(sys.stderr, environ),
    )
    return settings


def wants_colour(stream: TextIO, environ: dict[str, str]) -> bool:
    """Colour only for a person: ``stream`` is a terminal and NO_COLOR (no-color.org: any
    non-empty value) is not set."""
    if environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _log() -> Any:
    from rotator.logging import get_logger  # noqa: PLC0415

    return get_logger()


# ------------------------------------------------------------------------ commands


def _hooks(args: argparse.Namespace) -> Any:
    """The ``Hooks`` ``main`` was given (a program embedding the rotator), else none."""
    from rotator.app import NO_HOOKS  # noqa: PLC0415 - keeps --help fast

    return getattr(args, "hooks", None) or NO_HOOKS


def _cmd_run_once(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from rotator.app import (  # noqa: PLC0415
        STOP_SIGNALS,
        build_runner,
        push_metrics,
        run_pass_with_metrics,
    )
    from rotator.metrics import Metrics  # noqa: PLC0415

    settings = _load(environ)
    metrics = Metrics()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # A CronJob pod being deleted: finish the credentials in flight (never stop between
        # create and deliver), end any wait at once, then stop; the next run does the rest.
        _log().warning("pass.stopping", signal=signal.Signals(signum).name)
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    hooks = _hooks(args)
    runner = build_runner(settings, stop_requested=stop, hooks=hooks)
    report = run_pass_with_metrics(settings, runner, metrics, stop=stop, sinks=hooks.sinks)
    _print_pass(args, environ, report, dry_run=settings.dry_run)
    try:
        push_metrics(settings, metrics)
    except OSError as exc:
        # The pass is done either way; a CronJob whose metrics are lost must still show it.
        _log().error("metrics.push_failed", error=str(exc))
        return max(report.exit_code, EXIT_UNDONE)
    return report.exit_code


def _print_pass(
    args: argparse.Namespace, environ: dict[str, str], report: Any, *, dry_run: bool
) -> None:
    """What a pass did, on standard output: a line per action and the counts, or the report."""
    from rotator.app import utc_now  # noqa: PLC0415
    from rotator.render import dump, pass_lines  # noqa: PLC0415 - only when printing
    from rotator.report import pass_document  # noqa: PLC0415

    document = pass_document(report, dry_run=dry_run)
    if args.output in ("json", "yaml"):
        print(dump(document, args.output))
    else:
        print(pass_lines(document, _screen(args, environ, utc_now())))


def _cmd_rotate(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from rotator.app import build_runner, open_workspaces  # noqa: PLC0415

    settings = _load(environ)
    if not args.now:
        raise ConfigError(["rotate: --now is required (it rotates at once, whatever the policy)"])
    if bool(args.all) == bool(args.name):
        raise ConfigError(
            ["rotate: name the credentials to rotate, or give --all (every managed credential), "
             "not both"]
        )  # fmt: skip
    if settings.dry_run:
        # An emergency action (a leaked key) must never look done while nothing changed.
        raise ConfigError(
            ["ROTATOR_DRY_RUN: is true, and rotate changes keys: unset it to rotate, or use "
             "`rotator plan` to see what a pass would do"]
        )  # fmt: skip
    names = [ws.name for ws in settings.workspaces]
    if args.workspace is not None and args.workspace not in names:
        raise ConfigError(
            [f"--workspace: no workspace {args.workspace!r} is configured (there are: "
             f"{', '.join(names)})"]
        )  # fmt: skip
    wanted = set(args.name)
    hooks = _hooks(args)
    runner = build_runner(settings, emergency=True, grace_hours=args.grace_hours, hooks=hooks)
    with open_workspaces(settings, sinks=hooks.sinks) as workspaces:
        chosen = [w for w in workspaces if args.workspace in (None, w.name)]
        if args.all:
            # Every credential managed in the chosen workspaces, as status shows them now.
            rows = build_runner(settings, dry_run=True, hooks=hooks).inventory(chosen).rows
            wanted = {row.credential for row in rows if row.managed}
        elif args.workspace is None and len(chosen) > 1:
            _refuse_ambiguous(build_runner(settings, dry_run=True, hooks=hooks), chosen, wanted)
        if args.workspace is not None and len(workspaces) > 1:
            # Its twin under another admin key is known only by reading every entry's `me`:
            # rotating in one entry alone would revoke the key the other entry's sink holds.
            found = build_runner(settings, dry_run=True, hooks=hooks).inventory(workspaces)
            if args.workspace in found.refused:
                raise ConfigError([f"--workspace: {found.refused[args.workspace]}"])
        report = runner.run_pass(chosen, forced=wanted)
    _print_pass(args, environ, report, dry_run=False)
    usable = [w for w in report.workspaces if w.usable and not w.locked]
    unknown = sorted(n for n in wanted if usable and all(n in w.not_found for w in usable))
    if unknown and not args.all:
        raise ConfigError(
            [
                f"{name}: no credential of that name is managed here (no listed key has "
                "that base name, or ROTATOR_KEY_NAMES / ROTATOR_EXCLUDE_KEY_NAMES leave it out)"
                for name in unknown
            ]
        )
    return report.exit_code


def _grace_hours(text: str) -> float:
    """``--grace-hours``: as ROTATOR_GRACE_HOURS, a number of hours from 0 to 8760."""
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= 8760:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be a number of hours from 0 to 8760, got {text!r}")
    return hours


def _refuse_ambiguous(reader: Any, workspaces: list[Any], wanted: set[str]) -> None:
    """Without --workspace, a name managed in several workspaces is refused before anything
    changes: rotating it everywhere would revoke every one of those keys at once."""
    holders: dict[str, list[str]] = {}
    found = reader.inventory(workspaces)
    for row in [*found.rows, *found.refused_rows]:
        if (
            row.managed
            and row.credential in wanted
            and row.workspace not in holders.get(row.credential, [])
        ):
            holders.setdefault(row.credential, []).append(row.workspace)
    problems = [
        f"{name}: is managed in several workspaces ({', '.join(sorted(where))}): name one with "
        "--workspace; nothing was changed"
        for name, where in sorted(holders.items())
        if len(where) > 1
    ]
    unknown = {**found.unusable, **found.incomplete, **found.refused}
    if not problems and unknown:
        # A workspace that could not be read (or whose sink could not list what it holds, or
        # that is refused as listed twice) may hold the name too: not knowing is refusing.
        unread = ", ".join(sorted(unknown))
        problems = [
            f"{name}: workspace {unread} could not be read, so it is not known whether the name "
            "is managed in more than one workspace: name one with --workspace; nothing was "
            "changed"
            for name in sorted(wanted)
        ]
    if problems:
        raise ConfigError(problems)


def _cmd_serve(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from rotator.service import serve  # noqa: PLC0415

    return serve(_load(environ))


class _Read(NamedTuple):
    """What a read-only command read: the settings, the runner's result (and what came with
    it), each workspace's sink by name, and the exit code so far."""

    settings: Any
    result: Any
    extra: Any
    sinks: dict[str, Any]
    code: int


def _read(
    args: argparse.Namespace, environ: dict[str, str], collect: Callable[..., Any]
) -> _Read | None:
    """A read-only command's data from a dry-run runner (plan, status); problems on stderr."""
    from rotator.app import build_runner, open_workspaces  # noqa: PLC0415

    settings = _load(environ)
    names = [ws.name for ws in settings.workspaces]
    if args.workspace is not None and args.workspace not in names:
        raise ConfigError(
            [f"--workspace: no workspace {args.workspace!r} is configured (there are: "
             f"{', '.join(names)})"]
        )  # fmt: skip
    hooks = _hooks(args)
    runner = build_runner(settings, dry_run=True, hooks=hooks)
    with open_workspaces(settings, sinks=hooks.sinks) as workspaces:
        # Every workspace is read even with --workspace: the budget and the refusal of a
        # workspace listed twice are decided over all of them, as a pass decides them.
        result, extra = collect(runner, workspaces)
        sinks = {ws.name: ws.sink for ws in workspaces}
    for name, error in result.unusable.items():
        print(f"rotator: workspace {name} could not be read: {error}", file=sys.stderr)
    for name, error in result.refused.items():
        print(f"rotator: workspace {name} is refused: {error}", file=sys.stderr)
    for name, error in result.incomplete.items():
        print(f"rotator: workspace {name} was read only in part: {error}", file=sys.stderr)
    for name, patterns in result.unmatched.items():
        for pattern in patterns:
            print(
                f"rotator: warning: workspace {name}: the pattern {pattern!r} selects no key",
                file=sys.stderr,
            )
    if result.unusable and len(result.unusable) == len(workspaces):
        return None
    undone = result.unusable or result.refused or result.incomplete
    return _Read(settings, result, extra, sinks, EXIT_UNDONE if undone else EXIT_OK)


def _chosen(args: argparse.Namespace, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows ``--workspace`` and ``--credential GLOB`` keep."""
    from fnmatch import fnmatchcase  # noqa: PLC0415

    return [
        r
        for r in rows
        if args.workspace in (None, r["workspace"])
        and (args.credential is None or fnmatchcase(str(r["credential"]), args.credential))
    ]


def _cmd_plan(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from dataclasses import asdict  # noqa: PLC0415 - keeps --help fast

    read = _read(args, environ, lambda runner, ws: runner.plan_and_inventory(ws))
    if read is None:
        return EXIT_UNUSABLE
    plan, inventory, code = read.result, read.extra, read.code
    from rotator.app import utc_now  # noqa: PLC0415
    from rotator.render import dump, plan_table  # noqa: PLC0415 - only where a table is printed

    rows = _chosen(args, [asdict(a) for a in plan.rows])
    if args.output in ("json", "yaml"):
        print(dump(rows, args.output))
        return code
    upcoming = _chosen(args, [asdict(k) for k in inventory])
    print(plan_table(rows, upcoming, _screen(args, environ, utc_now())))
    return code


def _cmd_status(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from dataclasses import asdict  # noqa: PLC0415 - keeps --help fast

    read = _read(args, environ, lambda runner, ws: (runner.inventory(ws), None))
    if read is None:
        return EXIT_UNUSABLE
    inventory, code = read.result, read.code
    from rotator.app import unconfigured_workspaces, utc_now  # noqa: PLC0415
    from rotator.render import dump, status_order, status_table  # noqa: PLC0415

    rows = status_order(_chosen(args, [asdict(k) for k in inventory.rows]))
    if args.output in ("json", "yaml"):
        print(dump(rows, args.output))
    else:
        wide = args.output == "wide"
        if wide:
            rows = [{**r, "target": _target(read.sinks.get(r["workspace"]), r)} for r in rows]
        print(status_table(rows, _screen(args, environ, utc_now())))
    for name, credentials in unconfigured_workspaces(read.settings).items():
        print(
            f"rotator: warning: the sink holds records of workspace {name} ("
            f"{', '.join(credentials)}), which is no longer configured: its keys are not "
            "managed any more (revoke them, or list the workspace again)",
            file=sys.stderr,
        )
    return code


def _target(sink: Any, row: Mapping[str, Any]) -> str | None:
    """Where the sink keeps a managed credential (``status -o wide``), or None."""
    if sink is None or not row["managed"]:
        return None
    credential = str(row["credential"])
    if sink.kind == "file":
        from rotator.sinks.file import file_name  # noqa: PLC0415

        return f"file:{sink.directory / file_name(credential)}"
    if sink.kind == "exec":
        return f"{sink.describe()} {credential}"
    name_of = getattr(sink, "secret_name", None)
    if callable(name_of) and sink.kind == "kubernetes":
        return f"kubernetes:{sink.namespace}/{name_of(credential)}"
    if callable(name_of):
        return f"{sink.kind}:{name_of(credential)}"
    described: str = sink.describe()
    return described.replace("{workspace}", str(row["workspace"])).replace(
        "{credential}", credential
    )


def _cmd_check_config(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from rotator.app import config_warnings, my_workspaces, utc_now  # noqa: PLC0415
    from rotator.schedule import next_fire_times, parse_schedule  # noqa: PLC0415
    from rotator.settings import credential_problems, redacted  # noqa: PLC0415

    settings = _load(environ)
    # A pass fails only the workspace whose credential it cannot read; checking, it is an error.
    unreadable = credential_problems(settings.workspaces)
    if unreadable:
        raise ConfigError(unreadable)
    trigger = parse_schedule(settings.schedule, settings.timezone)
    fires = [t.isoformat() for t in next_fire_times(trigger, utc_now(), 3)]
    warnings = config_warnings(settings)
    mine = [ws.name for ws in my_workspaces(settings)]
    document: dict[str, Any] = {
        "settings": redacted(settings),
        "next_fire_times": fires,
        "warnings": warnings,
        "workspaces": mine,
    }
    if args.output == "wide":
        from rotator.settings import redacted_workspaces  # noqa: PLC0415

        document["workspace_settings"] = redacted_workspaces(settings)
    code = _check_online(settings, document) if args.online else EXIT_OK
    if args.output in ("json", "yaml"):
        from rotator.render import dump  # noqa: PLC0415

        print(dump(document, args.output))
        return code
    for warning in warnings:
        print(f"warning: {warning}")
    print(
        f"Workspaces this process takes (shard {settings.shard_index} of {settings.shards}): "
        + (", ".join(mine) or "none")
    )
    print("Effective settings (secrets redacted):")
    for name, value in document["settings"].items():
        print(f"  {name}={'' if value is None else value}")
    for ws in document.get("workspace_settings", []):
        print(f"Workspace {ws['name']} (secrets redacted):")
        for name, value in ws.items():
            print(f"  {name}={'' if value is None else value}")
    print(f"Next times ROTATOR_SCHEDULE ({settings.schedule!r} in {settings.timezone}) fires:")
    for fire in fires:
        print(f"  {fire}")
    if args.online:
        from rotator.render import checks_table  # noqa: PLC0415

        print("Online checks (GET requests and read-only sink calls; nothing changed):")
        print(checks_table(document["online"], wants_colour(sys.stdout, environ)))
    return code


def _check_online(settings: Any, document: dict[str, Any]) -> int:
    """``check-config --online``: the checks into ``document``, each error also on stderr."""
    from dataclasses import asdict  # noqa: PLC0415

    from rotator.preflight import check_online  # noqa: PLC0415

    checked = check_online(settings)
    document["online"] = [
        {"workspace": w.workspace, "usable": w.usable, "checks": [asdict(c) for c in w.checks]}
        for w in checked
    ]
    for w in checked:
        for c in w.checks:
            if c.status == "error":
                # One line per problem naming the workspace, whatever the output format.
                print(f"rotator: workspace {w.workspace}: {c.check}: {c.detail}", file=sys.stderr)
    return EXIT_OK if all(w.usable for w in checked) else EXIT_UNDONE


def _cmd_emulator(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from rotator.emulator import SeedError, run  # noqa: PLC0415 - only emulator and demo load it
    from rotator.settings import check_no_unknown_variables  # noqa: PLC0415

    check_no_unknown_variables(environ)

    from pathlib import Path  # noqa: PLC0415

    try:
        return run(args.port, Path(args.seed) if args.seed else None, clock=args.clock)
    except SeedError as exc:
        raise ConfigError(exc.problems) from None


def _cmd_demo(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from rotator.demo import run_demo  # noqa: PLC0415
    from rotator.settings import check_no_unknown_variables  # noqa: PLC0415

    check_no_unknown_variables(environ)

    return run_demo(sys.stdout, colour=wants_colour(sys.stdout, environ))


# ------------------------------------------------------------------------- output


def _print_json(value: object) -> None:
    from rotator.render import dump  # noqa: PLC0415 - keeps --help fast

    print(dump(value, "json"))


def _screen(args: argparse.Namespace, environ: dict[str, str], now: Any) -> Any:
    """How the reader sees standard output: how wide, in colour or not, ``-o wide`` or not."""
    from rotator.render import Screen  # noqa: PLC0415

    return Screen(
        now=now,
        width=_table_width(environ),
        colour=wants_colour(sys.stdout, environ),
        wide=getattr(args, "output", None) == "wide",
    )


def _table_width(environ: dict[str, str]) -> int:
    """How wide a default table may be: COLUMNS, else the terminal's width when standard output
    is one, else (a pipe, a file) the most a table ever takes, 120."""
    from rotator.render import MAX_TABLE_WIDTH  # noqa: PLC0415

    columns = environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return min(int(columns), MAX_TABLE_WIDTH)
    try:
        if sys.stdout.isatty():
            return min(os.get_terminal_size(sys.stdout.fileno()).columns, MAX_TABLE_WIDTH)
    except (AttributeError, ValueError, OSError):
        pass
    return MAX_TABLE_WIDTH


# ------------------------------------------------------------------------- parser


#: What each command reads besides the settings every command uses (the API, the credential,
#: which keys, the sink, logs, HTTP, shards). Every other ROTATOR_* variable is still checked at
#: start, as a pass would check it, so a bad value is exit 2 in every command.
_LOCK = ("ROTATOR_LOCK", "ROTATOR_LOCK_DIR", "ROTATOR_LEASE_NAMESPACE",
         "ROTATOR_LEASE_DURATION_SECONDS")  # fmt: skip
_SCHEDULE = ("ROTATOR_SCHEDULE", "ROTATOR_TIMEZONE")
_PASS = ("ROTATOR_DRY_RUN", "ROTATOR_MAX_FAILURE_RATIO", "ROTATOR_MAX_ROTATIONS_PER_PASS",
         "ROTATOR_CONCURRENCY", "ROTATOR_WORKSPACE_CONCURRENCY")  # fmt: skip
_SERVE = ("ROTATOR_HTTP_PORT", "ROTATOR_HTTP_HOST", "ROTATOR_RUN_ON_START",
          "ROTATOR_SHUTDOWN_TIMEOUT_SECONDS")  # fmt: skip
_OWN = {
    "run-once": (*_PASS, "ROTATOR_GRACE_HOURS", *_LOCK, *_SCHEDULE, "ROTATOR_PUSHGATEWAY_URL"),
    "serve": (*_PASS, "ROTATOR_GRACE_HOURS", *_LOCK, *_SCHEDULE, *_SERVE),
    "rotate": (*_PASS, "ROTATOR_EMERGENCY_GRACE_HOURS", *_LOCK),
    "plan": ("ROTATOR_GRACE_HOURS", "ROTATOR_MAX_ROTATIONS_PER_PASS"),
    "status": (),
}
_NOT_COMMON = {*_LOCK, *_SCHEDULE, *_PASS, *_SERVE, "ROTATOR_GRACE_HOURS",
               "ROTATOR_PUSHGATEWAY_URL", "ROTATOR_EMERGENCY_GRACE_HOURS"}  # fmt: skip


def command_variables(command: str) -> list[str]:
    """The variables ``command`` reads (``check-config``: every one), sorted."""
    from rotator.variables import VARIABLES  # noqa: PLC0415 - plain data, no pydantic

    if command == "check-config":
        return list(VARIABLES)
    own = set(_OWN[command])
    return [name for name in VARIABLES if name not in _NOT_COMMON or name in own]


def _environment_epilog(command: str) -> str:
    """``--help``'s list of the variables ``command`` reads: each with its default and what it
    means (rotator/variables.py, generated from the settings models), the sinks' grouped."""
    from rotator.variables import DOCS_URL, VARIABLES  # noqa: PLC0415

    names = command_variables(command)
    lines = [
        "environment variables it reads (each may also be given as NAME_FILE, a file holding "
        "the value):"
    ]
    for kind in ("", *sorted({VARIABLES[n][2] for n in names} - {""})):
        if kind:
            lines.append(f"\n  the {kind} sink (ROTATOR_SINK={kind}):")
        for name in (n for n in names if VARIABLES[n][2] == kind):
            default, meaning, _ = VARIABLES[name]
            lines.append(f"  {name} (default: {default})")
            lines += textwrap.wrap(
                meaning, width=96, initial_indent="      ", subsequent_indent="      "
            )
    if command != "check-config":
        lines.append(
            "\nEvery other ROTATOR_* variable is checked at start too (a bad value is exit 2); "
            "`rotator check-config --help` lists them all."
        )
    lines.append(f"\nDocumentation: {DOCS_URL}")
    return "\n".join(lines)


Handler = Callable[[argparse.Namespace, dict[str, str]], int]


def _add_output(command: argparse.ArgumentParser, json_is: str) -> None:
    command.add_argument(
        "-o",
        "--output",
        choices=("table", "wide", "json", "yaml"),
        default="table",
        help="table (the default; at most 120 columns), wide (every column), json or yaml",
    )
    command.add_argument(
        "--json", dest="output", action="store_const", const="json", help=f"-o json: {json_is}"
    )


def _add_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument("--workspace", metavar="W", help="only workspace W")
    command.add_argument(
        "--credential", metavar="GLOB", help="only credentials matching GLOB (e.g. 'billing-*')"
    )


def _add_pass_output(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        help="text (a line per action, then the counts; the default), or the pass's report as "
        "json or yaml",
    )


class _Parser(argparse.ArgumentParser):
    """A command's parser whose epilog (the variables it reads) is written only when its help
    is shown: building all of them would cost every start-up, ``--help`` included."""

    epilog_of: Callable[[], str] | None = None

    def format_help(self) -> str:
        if self.epilog_of is not None:
            self.epilog, self.epilog_of = self.epilog_of(), None
            if self.description:  # raw text (the epilog's layout is kept): wrap it here
                self.description = textwrap.fill(self.description, width=100)
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rotator",
        description="Rotates ProjectManager.com API keys before they expire. " + _ENV_HELP,
    )
    parser.add_argument("--version", action="version", version=f"rotator {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    def add(
        name: str, handler: Handler, help_text: str, *, reads_env: bool = True
    ) -> argparse.ArgumentParser:
        command: _Parser = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.epilog_of = lambda: _environment_epilog(name) if reads_env else _NO_ENVIRONMENT
        command.set_defaults(handler=handler)
        return command

    run_once = add(
        "run-once",
        _cmd_run_once,
        "Run one pass over every configured workspace, then exit; print a line per action "
        "taken and a line of counts.",
    )
    _add_pass_output(run_once)
    add(
        "serve",
        _cmd_serve,
        "Run passes on ROTATOR_SCHEDULE; serve /healthz, /readyz and /metrics on "
        "ROTATOR_HTTP_PORT; on SIGTERM finish the credential in flight and exit.",
    )
    rotate = add(
        "rotate",
        _cmd_rotate,
        "Rotate the named credentials (or --all) at once, whatever the policy: a leaked key, "
        "or a first delivery into the sink. A previous key still in its grace period is retired "
        "first; the current key is replaced and kept for ROTATOR_EMERGENCY_GRACE_HOURS (default "
        "0: revoked in the same run) or --grace-hours. The rotator's own key goes last.",
    )
    rotate.add_argument("name", nargs="*", help="the credentials: keys' base names")
    rotate.add_argument(
        "--all",
        action="store_true",
        help="every managed credential (of --workspace W, else of every workspace)",
    )
    rotate.add_argument("--now", action="store_true", help="required: rotate now")
    rotate.add_argument(
        "--workspace", metavar="W", help="the workspace label (ROTATOR_WORKSPACE_NAME)"
    )
    rotate.add_argument(
        "--grace-hours",
        metavar="H",
        type=_grace_hours,
        help="keep each old key working for H hours (0 to 8760) instead of "
        "ROTATOR_EMERGENCY_GRACE_HOURS: onboarding, when consumers still read the old key",
    )
    _add_pass_output(rotate)
    plan = add(
        "plan",
        _cmd_plan,
        "Show what a pass would do now, changing nothing, and the next actions not due yet.",
    )
    _add_output(plan, "a JSON array of the actions")
    _add_filters(plan)
    status = add(
        "status",
        _cmd_status,
        "Show every key of every workspace: its role, what a pass does to it next and when, "
        "and whether the sink holds it; the most urgent first.",
    )
    _add_output(status, "a JSON array, one object per key")
    _add_filters(status)
    check = add(
        "check-config",
        _cmd_check_config,
        "Validate the environment; print the effective settings (secrets redacted) and the "
        "next three times ROTATOR_SCHEDULE fires.",
    )
    _add_output(check, "a JSON object")
    check.add_argument(
        "--online",
        action="store_true",
        help="also check, changing nothing, each workspace for real: its credential (me), the "
        "keys each pattern selects, the sink's list and reads, the lock (taken and released), "
        "and where the own key is delivered; exit 1 when a workspace is not usable",
    )
    emulator = add(
        "emulator",
        _cmd_emulator,
        "Serve the bundled emulator of the ProjectManager API-key endpoints on 127.0.0.1.",
        reads_env=False,
    )
    emulator.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    emulator.add_argument(
        "--seed", help="JSON file of workspaces and keys to start with (README's format)"
    )
    emulator.add_argument(
        "--clock",
        choices=("real", "frozen"),
        default="real",
        help="real (the default): time runs, from the seed's now if it has one; frozen: it "
        "stands still until POST /_emulator/clock moves it",
    )
    add(
        "demo",
        _cmd_demo,
        "Start the emulator with keys of several ages, run a real pass with the file sink in a "
        "temporary folder, and show the inventory before and after.",
        reads_env=False,
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    environ: dict[str, str] | None = None,
    *,
    hooks: Any = None,
) -> int:
    """Entry point of the ``rotator`` console script; returns the exit code.

    ``hooks`` (``rotator.app.Hooks``) is for a program embedding the rotator, such as its own
    tests: the clock, a step checkpoint, sinks of its own; the console script never sets it.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.hooks = hooks
    env = dict(os.environ if environ is None else environ)
    handler: Handler = args.handler
    try:
        code = handler(args, env)
        # Inside the try: what is still buffered is written now, and may meet a closed pipe.
        sys.stdout.flush()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BrokenPipeError:
        return _stdout_closed()
    except ConfigError as exc:
        _print_problems(exc.problems, sys.stderr)
        return EXIT_CONFIG
    except ApiError as exc:
        # A read-only command (plan, status) that could not reach the API or was refused.
        print(f"rotator: the API could not be used: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except RotatorError as exc:
        print(f"rotator: {exc}", file=sys.stderr)
        return EXIT_UNDONE
    except Exception as exc:  # noqa: BLE001 - no traceback: its text could hold anything
        _report_crash(exc)
        return EXIT_UNDONE
    return code


def _stdout_closed() -> int:
    """Standard output was closed early (``rotator status | head``): stop quietly.

    The reader has all it wanted, so nothing is reported. What is still buffered goes to
    /dev/null instead: the interpreter flushes standard output on its way out, and that write
    would fail again, with a message. The code is 141, as a shell reports a process that the
    default SIGPIPE action ended (Python ignores SIGPIPE, so it sees the error instead).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_STDOUT_CLOSED


def _report_crash(exc: Exception) -> None:
    """An error no rule foresaw: logged by class only (its text could carry a secret)."""
    with suppress(Exception):  # logging may be what failed
        _log().error("rotator.crashed", error_type=type(exc).__name__)
    print(f"rotator: unexpected {type(exc).__name__}; see the log", file=sys.stderr)
