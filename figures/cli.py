"""`trak-sim figures`: the figures package's subcommand, registered with the command line by the
entry point `trak_sim.commands: figures` (pyproject.toml), so that sims imports nothing from here."""

from __future__ import annotations

import json

from theory.errors import InvalidParameterError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "figures", help="regenerate the figures (theory curves + cached simulation sweeps)",
        description="Draw each figure of the figures package (one module per figure, its spec in "
                    "figures/specs/): its sweep is cached under RESULTS/<preset>/<figure>/ and resumes "
                    "if interrupted; PNG and PDF files (byte-reproducible) are written to --out.")
    p.add_argument("--preset", default="quick", choices=("quick", "paper"),
                   help="quick: small p, minutes on a laptop CPU; paper: large p, for a GPU (default: %(default)s)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="figure names (default: all)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="folder of the PNG/PDF files (default: figures/ of a source checkout, else ./figures; "
                        "or $TRAK_SIM_FIGURES_DIR)")
    p.add_argument("--results", default=None, metavar="DIR",
                   help="folder of the cached sweeps (default: results/ of a source checkout, else ./results; "
                        "or $TRAK_SIM_RESULTS_DIR)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="draw the figures in N worker processes, the longest first (from scratch most of "
                        "the time is compilation, one core per program: use the number of cores; "
                        "progress bars only with 1) (default: %(default)s)")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary on stdout (figures written, their paths, timings)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(run=_run_figures)


def _run_figures(args) -> int:
    import time

    import figures

    names = figures.names()
    if args.list:
        print(json.dumps(names, indent=2) if args.json else "\n".join(names))
        return 0
    chosen = args.only or names
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise InvalidParameterError(f"unknown figure {unknown[0]!r}; available: {', '.join(names)}.")
    if args.jobs < 1:
        raise InvalidParameterError(f"--jobs must be a positive integer, got {args.jobs}.")
    done, start = [], time.perf_counter()
    for name, paths, seconds in figures.make_many(chosen, args.preset, out=args.out, results=args.results,
                                                  jobs=args.jobs, progress=not (args.no_progress or args.json)):
        done.append({"name": name, "paths": paths, "wall_time_s": seconds})
        if not args.json:
            print(f"{name}: {', '.join(paths)} ({seconds:.0f} s)", flush=True)
    if args.json:
        print(json.dumps({"preset": args.preset, "figures": done,
                          "wall_time_s": time.perf_counter() - start}, indent=2))
    return 0
