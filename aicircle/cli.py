"""The ``aicircle`` command line (DESIGN section 5).

Exit status 0 on success, 2 on bad input (the user's to fix), 1 on a failure
that is not the user's (a solver that gives up). On error stderr holds exactly
one line, ``aicircle: error: <what and where>``; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path

from .errors import AicircleError, IntegrationError, InvalidInput

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2


class _UsageError(InvalidInput):
    """A malformed command line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise _UsageError(message)


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def _assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"--set needs NAME=VALUE, got '{text}'")
    if not value.strip():
        raise argparse.ArgumentTypeError(f"--set {name.strip()} has no value")
    return name.strip(), _finite(value.strip())


def write_atomic(path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    An interrupted run leaves the previous file, never half of a new one.
    """
    path = Path(path)
    if not path.parent.exists():
        raise InvalidInput(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _load(model):
    from . import _resources, load

    return load(model if model else _resources.shipped_model())


def _cmd_run(args):
    from . import scenarios

    model = _load(args.model)
    params = dict(args.set or [])
    if args.scenario:
        params = {**scenarios.scenario_params(model, args.scenario), **params}
    df = model.simulate(params=params, solver=args.solver, final_time=args.final_time)
    if args.out:
        write_atomic(args.out, lambda p: df.to_csv(p))
        _info(args, f"wrote {len(df)} rows x {df.shape[1]} columns to {args.out}")
    else:
        df.to_csv(sys.stdout)


def _cmd_describe(args):
    import pandas as pd

    from . import scenarios
    from .observables import find_observables

    model = _load(args.model)
    t = model.time
    print(f"model: {model.path}")
    print(f"time: {t['initial_time']:g} to {t['final_time']:g}, TIME STEP {t['time_step']:g}, "
          f"SAVEPER {t['saveper']:g}")
    print(f"stocks ({len(model.stocks)}): {', '.join(model.stocks)}")
    hidden = len(model.state_names) - len(model.stocks)
    if hidden:
        print(f"hidden states of builtins: {hidden}")
    print(f"\nparameters ({len(model.parameters)}):")
    with pd.option_context("display.max_rows", None, "display.width", 200,
                           "display.max_colwidth", 60):
        table = model.parameters[["value", "min", "max", "units"]]
        print(table.to_string() if len(table) else "  (none)")
    obs = find_observables(model.variables)
    print(f"\nobservables ({len(obs)}):")
    for oid, name in obs.items():
        print(f"  {oid:32s} {name}")
    lib = scenarios.available(model)
    print(f"\nscenarios ({len(lib)}):")
    for name, sc in lib.items():
        print(f"  {name:28s} {sc.description}")
    loops = model.loops
    if loops:
        print(f"\nfeedback loops ({len(loops)}):")
        for loop, names in loops.items():
            print(f"  {loop}: {', '.join(names)}")


def _cmd_export_xmile(args):
    from .xmile import export_xmile

    src = Path(args.model)
    out = Path(args.output) if args.output else src.with_suffix(".xmile")
    export_xmile(src, out)
    _info(args, f"wrote {out}")


def _info(args, text):
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="aicircle", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"aicircle {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a traceback on error")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    def command(name, func, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress or messages")
        p.add_argument("--debug", action="store_true", help="show a traceback on error")
        p.set_defaults(func=func)
        return p

    p = command("run", _cmd_run, "run a model and write its results as CSV")
    p.add_argument("model", nargs="?", help="a .mdl or .xmile model (default: the shipped model)")
    p.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                   help="set a parameter (repeatable)")
    p.add_argument("--scenario", help="a named scenario (see 'aicircle describe')")
    p.add_argument("--solver", default="euler", help="euler, rk4, rk23, rk45, dop853, lsoda, radau, bdf")
    p.add_argument("--final-time", type=_finite, help="end of the run, in the model's time unit")
    p.add_argument("--out", help="CSV file to write (default: standard output)")

    p = command("describe", _cmd_describe, "list parameters, observables, scenarios and loops")
    p.add_argument("model", nargs="?", help="a .mdl or .xmile model (default: the shipped model)")

    p = command("export-xmile", _cmd_export_xmile, "write a Vensim model as XMILE")
    p.add_argument("model", help="the .mdl model")
    p.add_argument("-o", "--output", help="the XMILE file (default: beside the model)")

    for register in _EXTRA_COMMANDS:
        register(command)
    return parser


# Commands defined in other modules add themselves here (calibrate, tipping, ...).
_EXTRA_COMMANDS: list = []


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            raise _UsageError("no command given; try 'aicircle --help'")
        with warnings.catch_warnings():
            if not debug:
                warnings.simplefilter("ignore")
            args.func(args)
        return EXIT_OK
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("aicircle: error: interrupted", file=sys.stderr)
        return 130
    except (IntegrationError, MemoryError) as err:
        return _fail(err, EXIT_FAILURE, debug)
    except (AicircleError, OSError) as err:
        return _fail(err, EXIT_BAD_INPUT, debug)
    except Exception as err:  # a bug: still one line, but exit 1
        return _fail(err, EXIT_FAILURE, debug, prefix=f"internal error ({type(err).__name__}): ")


def _fail(err, code, debug, prefix=""):
    if debug:
        import traceback

        traceback.print_exc()
    message = " ".join(str(err).split()) or type(err).__name__
    print(f"aicircle: error: {prefix}{message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
