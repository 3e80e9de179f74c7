"""A phenomenon's experiment: its variants × seeds as parallel headless runs, judged together as one group.

Some findings live only across runs (a lottery ticket is a ticket next to its reinit and random-mask controls,
averaged over seeds). A phenomenon that declares `experiment` and `group_criterion` gets `phenomon experiment NAME`,
and `phenomon show` states the group verdict beside the run's own.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from phenomon import store
from phenomon.config import ACCELERATORS, UsageError, check_accelerator, check_value, from_dict
from phenomon.registry import Phenomenon, Verdict


def _toggles_key(r: store.RunInfo) -> str:
    return ",".join(sorted(r.manifest.get("toggles") or []))


def group_frame(runs: list[store.RunInfo], problems: list[str] | None = None, axis: str | None = None) -> pl.DataFrame:
    """Wide rows of `runs` with `run`, `toggles` and `seed` columns; the latest run per (toggles, seed) only.

    With `axis` (a sweep's config field, e.g. "width"), also a column of that name, and the latest run per
    (toggles, seed, axis value).
    """
    latest: dict[tuple, store.RunInfo] = {}
    at = (lambda r: (r.manifest.get("config") or {}).get(axis)) if axis else (lambda r: None)
    for r in sorted(runs, key=lambda r: (r.manifest.get("started") or 0, r.id)):
        latest[(_toggles_key(r), r.manifest.get("seed"), at(r))] = r
    frames = [store.wide(store.read_metrics(r.dir, problems=problems)).with_columns(
        pl.lit(r.id).alias("run"), pl.lit(_toggles_key(r)).alias("toggles"),
        pl.lit(r.manifest.get("seed"), pl.Int64).alias("seed"),
        *([pl.lit(at(r)).alias(axis)] if axis else [])) for r in latest.values()]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def group_verdict(ph: Phenomenon, root: Path, group: str, problems: list[str] | None = None) -> Verdict | None:
    """The group criterion over the group's finished runs (None when the phenomenon has none)."""
    if ph.group_criterion is None:
        return None
    runs = [r for r in store.list_runs(root) if r.group == group and r.phenomenon == ph.name
            and r.state == "finished"]
    if not runs:
        return Verdict(None, "no finished runs in the group yet")
    cfg = ph.baseline_of(from_dict(ph.config_cls, runs[-1].manifest.get("config") or {}))
    try:
        return ph.group_criterion(group_frame(runs, problems, ph.sweep_field() if ph.sweep else None), cfg)
    except Exception as e:  # noqa: BLE001 - a verdict must never take the command down
        return Verdict(None, f"group verdict unavailable ({e.__class__.__name__}: {e})")


def add_parser(sub) -> None:
    e = sub.add_parser("experiment", help="a phenomenon's variants × seeds in parallel processes, judged together",
                       epilog="Ctrl-C, SIGTERM or SIGHUP to this command stops every run it started (their rows are "
                              "kept, each marked killed).")
    e.add_argument("phenomenon")
    e.add_argument("--variants", help="comma-separated variants: the experiment's, or any toggle's name "
                                      "(default: the experiment's)")
    e.add_argument("--seeds", help="comma-separated seeds (default: the phenomenon's, usually 0,1,2)")
    e.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="hyperparameters for every run from a YAML or JSON file, the keys of --set (which wins)")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    e.add_argument("--preset")
    e.add_argument("--parallel", type=int, help="runs at once (default: the core count)")
    e.add_argument("--accelerator", default="auto", choices=ACCELERATORS)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--runs")
    from phenomon import engines

    engines.add_arguments(e)


def cmd_experiment(args, argv) -> int:
    from phenomon import registry

    from phenomon.config import sets_from_files

    ph = registry.get(args.phenomenon)
    sets = [*sets_from_files(args.config), *args.set]  # the file first: --set wins
    if not ph.experiment:
        with_exp = [n for n in registry.names() if registry.get(n).experiment]
        raise UsageError(f"{ph.name} has no experiment; phenomena with one: {', '.join(with_exp) or 'none'}")
    # the experiment's own variants, and any single toggle by its name
    variants = {**{t.name: (t.name,) for t in ph.toggles}, **ph.experiment}
    if args.variants is not None and not args.variants.strip(", "):
        raise UsageError(f"--variants is empty; valid: {', '.join(variants)} (or leave it out for the experiment's)")
    if args.seeds is not None and not args.seeds.strip(", "):
        raise UsageError("--seeds is empty; give comma-separated integers (or leave it out for the defaults)")
    labels = [v.strip() for v in args.variants.split(",")] if args.variants is not None else list(ph.experiment)
    for v in labels:
        if v not in variants:
            raise UsageError(f"unknown variant {v!r} for {ph.name}; valid: {', '.join(variants)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds is not None else \
            list(getattr(ph.resolve(args.preset, sets), "seeds", ph.seeds))
    except ValueError:
        raise UsageError(f"--seeds expects comma-separated integers, got {args.seeds!r}") from None
    for s in seeds:
        check_value("seed", s)
    if args.parallel is not None and args.parallel < 1:
        raise UsageError(f"--parallel must be >= 1, got {args.parallel}")
    from phenomon import engines

    engine = engines.choice(args)
    return launch_group(ph, {v: variants[v] for v in labels}, seeds, sets, args.preset,
                        Path(args.runs) if args.runs else store.default_root(), parallel=args.parallel,
                        accelerator=args.accelerator, threads=args.threads, command="experiment", engine=engine)


def launch_group(ph: Phenomenon, variants: dict[str, tuple[str, ...]], seeds: list[int], sets: list[str],
                 preset: str | None, root: Path, parallel: int | None = None, accelerator: str = "auto",
                 threads: int = 1, command: str = "experiment", extra: tuple[str, ...] = (), engine=None) -> int:
    """Variants × seeds (× the sweep's values) as parallel headless runs on `engine` (an EngineChoice, or an engine;
    local processes by default), then the group verdict; the exit code."""
    from phenomon.launcher import RunSpec
    from phenomon.runner import prepare_root
    from phenomon.sweep import Child, report, run_parallel

    # resolve every run here: a mistake stops the whole experiment before anything starts
    cfgs = [(v, s, ph.resolve(preset, [*sets, f"seed={s}"], list(variants[v]))) for v in variants for s in seeds]
    group = ph.group_of(cfgs[0][2])
    if getattr(engine, "name", "local") == "local":  # a GPU here, or one line before any run starts (a cluster's
        accelerator = check_accelerator(accelerator)  # nodes have their own: each run checks there)
    engine = engine.make() if hasattr(engine, "make") else engine  # Ray starts only once the runs are valid
    if hasattr(engine, "start"):
        engine.start()  # before the runs directory is made: a cluster that cannot be reached leaves nothing behind
    root = prepare_root(root)
    children = []
    for v, s, cfg in cfgs:
        for x in ph.sweep_values(cfg) or (None,):  # a sweep: one run per value of its field
            point = (f"{ph.sweep_field()}={x}",) if x is not None else ()
            children.append(Child(f"{v} seed {s}" + (f" {ph.sweep_field()} {x}" if x is not None else ""),
                                  RunSpec(ph.name, sets=(*sets, *point), toggles=variants[v], preset=preset, seed=s,
                                          accelerator=accelerator, threads=threads, root=root, extra=extra),
                                  cost=ph.sweep_cost(x) if x is not None and ph.sweep_cost else 0.0))
    print(f"phenomon {command} — {ph.name}: {', '.join(variants)} × seeds {', '.join(map(str, seeds))}"
          + (f" × {len(children) // len(cfgs)} {ph.sweep_field()}s" if len(children) > len(cfgs) else "")
          + f" (group {group})" + (f" on {engine.describe()}" if engine is not None and engine.name != "local" else ""))
    t0 = time.time()
    try:
        run_parallel(children, root, max_parallel=parallel, engine=engine)
    except KeyboardInterrupt:
        print(f"\nphenomon {command}: stopped every run (their rows so far are kept)")
        return 130
    ok = report(children, root)
    v = group_verdict(ph, root, group)
    print(f"group {group} ({time.time() - t0:.0f} s): {v.line if v else '-'}")
    return 0 if ok else 1
