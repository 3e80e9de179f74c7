"""The `phenomon` command: list phenomena, run them headless, list and inspect runs, run the demo."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from phenomon import __version__, engines, experiment, store
from phenomon.catalog import MAIN_SIGNALS
from phenomon.config import ACCELERATORS, UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _root(args) -> Path:
    return Path(args.runs) if args.runs else store.default_root()


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="phenomon", description="A terminal laboratory for deep-learning phenomena.")
    p.add_argument("--version", action="version", version=f"phenomon {__version__}")
    sub = p.add_subparsers(dest="cmd", parser_class=_Parser)

    sub.add_parser("phenomena", help="list phenomena, their toggles and what each toggle is expected to do")
    sub.add_parser("signals", help="list explanation signals: the theory each stands for, where it applies, its cost")

    r = sub.add_parser("run", help="run one configuration headless, streaming into the run store")
    r.add_argument("phenomenon")
    r.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="hyperparameters from a YAML or JSON file, the keys of --set (which wins); repeatable")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyperparameter")
    r.add_argument("--print-config", action="store_true", help="print the resolved configuration as YAML and exit")
    r.add_argument("--toggle", action="append", default=[], metavar="NAME", help="apply a registered ablation")
    r.add_argument("--preset", help="a named configuration of the phenomenon (see `phenomon phenomena`)")
    r.add_argument("--seed", type=int)
    r.add_argument("--max-steps", type=int)
    r.add_argument("--accelerator", default="auto", choices=ACCELERATORS)
    r.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on 2 busy cores)")
    r.add_argument("--group", help="comparison group (default: derived from the config without its toggles)")
    r.add_argument("--signals", help="comma-separated explanation signals to stream, or 'none' (default: all that apply)")
    r.add_argument("--runs", help="runs directory (default ./runs or $PHENOMON_RUNS)")
    from phenomon import engines

    engines.add_arguments(r)
    # set by an engine that launched this run: the run executes here, its manifest names the launch
    r.add_argument("--launch-id", help=argparse.SUPPRESS)
    r.add_argument("--launched-by", help=argparse.SUPPRESS)

    ls = sub.add_parser("ls", help="table of runs")
    ls.add_argument("--runs")
    ls.add_argument("--phenomenon")

    s = sub.add_parser("show", help="one run: config, status, final metrics, verdict")
    s.add_argument("run")
    s.add_argument("--runs")

    st = sub.add_parser("stop", help="ask a running run to stop (a stop file in its directory; works on any host)")
    st.add_argument("run", help="run id, unique id prefix, or run directory")
    st.add_argument("--runs")

    d = sub.add_parser("demo", help="grokking baseline and its no-weight-decay ablation, side by side, headless")
    d.add_argument("--runs")
    d.add_argument("--max-steps", type=int)
    d.add_argument("--accelerator", default="auto", choices=ACCELERATORS)
    experiment.add_parser(sub)

    t = sub.add_parser("tui", help="the live monitor: runs, comparison panels, keys that start paired runs")
    t.add_argument("phenomenon", nargs="?", help="focus this phenomenon (default: the latest run's)")
    t.add_argument("--runs", help="runs directory (default ./runs or $PHENOMON_RUNS)")
    t.add_argument("--demo", action="store_true", help="on an empty runs directory, start the grokking demo")
    _add_science_commands(sub)
    _add_invariance_command(sub)
    return p


def _add_science_commands(sub) -> None:
    sc = sub.add_parser("score", help="the scorecard: which explanation signals track, lead, add to the norm")
    sc.add_argument("--runs")
    sc.add_argument("--phenomenon", help="only this phenomenon's rows (default: every phenomenon and overall)")
    sc.add_argument("--all", action="store_true", help="show every signal variant, not only the main ones")
    sc.add_argument("--json", action="store_true", help="one JSON object per signal × phenomenon, with intervals")
    rp = sub.add_parser("report", help="figures (PNG) and a Markdown summary for a group of runs")
    rp.add_argument("group", nargs="?", help="comparison group or run id (default: every run)")
    rp.add_argument("--out", required=True, help="directory to write into")
    rp.add_argument("--runs")
    hy = sub.add_parser("hypothesis", help="preregister hypotheses about signals, then check them against later runs")
    hs = hy.add_subparsers(dest="hcmd", parser_class=_Parser)
    ha = hs.add_parser("add", help="register a hypothesis before the runs that test it")
    ha.add_argument("text")
    ha.add_argument("--signal", required=True)
    ha.add_argument("--phenomenon", required=True)
    ha.add_argument("--expect", required=True, help="track | lead | beyond | nothing | intervene")
    ha.add_argument("--threshold", type=float)
    ha.add_argument("--runs")
    for name, helptext in (("list", "registered hypotheses"), ("check", "evaluate each against the runs made after it")):
        x = hs.add_parser(name, help=helptext)
        x.add_argument("--runs")
    hw = hs.add_parser("withdraw", help="remove a hypothesis (only while no run was made after it)")
    hw.add_argument("id", help="the full id, as `phenomon hypothesis list` shows it")
    hw.add_argument("--runs")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser().parse_args(argv)
        if args.cmd is None:
            if not (sys.stdin.isatty() and sys.stdout.isatty()):  # piped or scripted: no full-screen app
                build_parser().print_help()
                return 0
            args = build_parser().parse_args(["tui", "--demo"])
        return COMMANDS[args.cmd](args, argv)
    except UsageError as e:
        print(f"phenomon: error: {e}", file=sys.stderr)
        return 2
    except store.StoreError as e:
        print(f"phenomon: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("phenomon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `phenomon ls | head`: the reader has gone, which is not an error of ours
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        except OSError:
            pass
        return 0


def cmd_phenomena(args, argv) -> int:
    from phenomon import registry

    for name in registry.names():
        ph = registry.get(name)
        print(f"{ph.name}: {ph.summary}")
        if ph.notes:
            print(f"  {ph.notes}")
        for t in ph.toggles:
            ch = ", ".join(f"{k}={v}" for k, v in t.changes.items())
            print(f"  toggle [{t.key}] {t.name:<16} ({ch}) {t.expect}")
        if ph.presets:
            print(f"  presets: {', '.join(ph.presets)}")
        print(f"  keys: {', '.join(ph.keys())}")
    return 0


def cmd_signals(args, argv) -> int:
    from phenomon.callbacks import signals as S

    for sg in S.SIGNALS.values():
        where = "every phenomenon" if "*" in sg.phenomena else ", ".join(sg.phenomena)
        print(f"{sg.name}: {sg.theory}")
        print(f"  {' '.join(sg.description.split())}")
        print(f"  applies to {where}; {sg.cost} (by default every {S.COSTS[sg.cost]} steps)"
              + ("; needs a probe batch" if sg.needs_probe else ""))
    return 0


def cmd_run(args, argv) -> int:
    from phenomon import registry, runner

    from phenomon.config import sets_from_files, to_dict

    ph = registry.get(args.phenomenon)
    given = [*sets_from_files(args.config), *args.set]  # the file first: --set wins
    sets = list(given)
    if args.seed is not None:
        sets.append(f"seed={args.seed}")
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise UsageError(f"--max-steps must be positive, got {args.max_steps}")
        sets.append(f"max_steps={args.max_steps}")
    cfg = ph.resolve(args.preset, sets, args.toggle)
    if args.print_config:  # a file `--config` takes back
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")
        return 0
    signals = None
    if args.signals is not None:
        signals = () if args.signals.strip().lower() == "none" else tuple(
            x.strip() for x in args.signals.split(",") if x.strip())
        runner.check_signals(signals)
    if args.launch_id is not None and not store.safe_name(args.launch_id):
        raise UsageError(f"--launch-id must be a name (letters, digits, _.-), got {args.launch_id!r}")
    # a launched run executes here whatever $PHENOMON_ENGINE says (else a worker would launch it again)
    engine = engines.choice(args) if args.launch_id is None else None
    extra = (("--group", args.group) if args.group else ()) + (("--signals", args.signals) if args.signals else ())
    if ph.sweep_values(cfg):  # the sweep field left at 0: one child run per value (and seed), judged as a group
        seeds = [args.seed] if args.seed is not None else list(getattr(cfg, "seeds", ph.seeds))
        label = store.toggles_label(args.toggle)
        return experiment.launch_group(ph, {label: tuple(args.toggle)}, seeds, sets[:len(given)], args.preset,
                                       _root(args), accelerator=args.accelerator, threads=args.threads,
                                       command="run", extra=extra, engine=engine)
    if engine is not None and engine.name != "local":
        return _run_on(engine.make(), ph, args, sets, extra)
    opts = runner.RunOptions(root=_root(args), accelerator=args.accelerator, threads=args.threads, group=args.group,
                             signals=signals, launch_id=args.launch_id, engine=args.launched_by)
    info = runner.run(ph, cfg, opts, argv=["phenomon", *argv])
    m = info.manifest
    print(f"{info.id}: {m['status']}" + (f" ({m['error']})" if m.get("error") else ""))
    print(f"  verdict: {m.get('verdict')}")
    return 0 if m["status"] == "finished" else 1


def _run_on(engine, ph, args, sets: list[str], extra: tuple[str, ...]) -> int:
    """One run on another engine (Ray): submitted, watched through the store, its verdict printed."""
    from phenomon.launcher import RunSpec
    from phenomon.runner import prepare_root
    from phenomon.sweep import Child, report, run_parallel

    engine.start()  # before the runs directory is made: a cluster that cannot be reached leaves nothing behind
    root = prepare_root(_root(args))
    spec = RunSpec(ph.name, sets=tuple(sets), toggles=tuple(args.toggle), preset=args.preset,
                   accelerator=args.accelerator, threads=args.threads, root=root, extra=extra)
    [child] = run_parallel([Child(store.toggles_label(args.toggle) or ph.name, spec)], root, engine=engine)
    ok = report([child], root)
    return 0 if ok else 1


def _fmt_progress(m: dict) -> str:
    pr = m.get("progress") or {}
    step, mx = pr.get("step") or 0, pr.get("max_steps")
    return f"{step}/{mx}" if mx else str(step)


def _fmt_metrics(m: dict, keys) -> str:
    s = m.get("summary") or {}
    return " ".join(f"{k}={s[k]:.3f}" for k in keys if k in s)


def cmd_ls(args, argv) -> int:
    from phenomon import registry

    root = _root(args)
    if not root.exists():
        if args.runs:  # a directory named on the command line: most likely a typo
            raise UsageError(f"runs directory {root} does not exist")
        print(f"no runs in {root}")
        return 0
    errors: list[str] = []
    runs = store.list_runs(root, errors=errors)
    if args.phenomenon:
        present = sorted({r.phenomenon for r in runs})
        if args.phenomenon not in present and args.phenomenon not in registry.names():
            raise UsageError(f"no runs of {args.phenomenon!r} in {root}; phenomena with runs: "
                             f"{', '.join(present) or 'none'}; registered: {', '.join(registry.names())}")
        runs = [r for r in runs if r.phenomenon == args.phenomenon]
    for e in errors:
        print(f"phenomon: warning: {e}", file=sys.stderr)
    if not runs:
        print(f"no runs in {root}" + (f" of {args.phenomenon}" if args.phenomenon else ""))
        return 0
    rows = [("ID", "PHENOMENON", "TOGGLES", "STATUS", "PROGRESS", "METRICS", "WHY")]
    for r in runs:
        m = r.manifest
        try:
            keys = registry.get(r.phenomenon).headline
        except UsageError:  # someone's own Lightning code: its losses and accuracies
            keys = store.text.pick_headline(m.get("summary") or {})
        why = m.get("error") or "" if r.state in ("failed", "killed") else \
            r.dead_reason() if r.state in ("dead", "skew") else ""
        rows.append((r.id, r.phenomenon, ",".join(m.get("toggles") or []) or "-", r.state, _fmt_progress(m),
                     _fmt_metrics(m, keys), " ".join(why.split())[:100]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def cmd_show(args, argv) -> int:
    from phenomon import registry

    info = store.find_run(_root(args), args.run)
    m = info.manifest
    print(f"run        {info.id}")
    print(f"phenomenon {m.get('phenomenon')}   group {m.get('group')}   seed {m.get('seed')}")
    state = info.state
    if state in ("dead", "skew"):
        state += f" ({info.dead_reason()})"
    print(f"status     {state}" + (f": {m['error']}" if m.get("error") else ""))
    if m.get("traceback"):  # the innermost frames, where the error was raised
        print("traceback  " + "\n           ".join(m["traceback"].rstrip().splitlines()[-6:]))
    print(f"progress   {_fmt_progress(m)}   rows {m.get('rows', 0)}")
    print(f"toggles    {', '.join(m.get('toggles') or []) or '(baseline)'}")
    diff = m.get("diff") or {}
    shown = lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v  # noqa: E731 - nested hparams as logged
    print("config     " + "  ".join(f"{k}={shown(v)}{'*' if k in diff else ''}"
                                    for k, v in (m.get("config") or {}).items()))
    summ = m.get("summary") or {}
    if summ:
        print("final      " + "  ".join(f"{k}={v:.4g}" for k, v in sorted(summ.items())))
    problems: list[str] = []
    verdict, ph = m.get("verdict"), None
    try:
        ph = registry.get(m.get("phenomenon", ""))
        from phenomon.config import from_dict

        cfg = from_dict(ph.config_cls, m.get("config") or {})
        frame = store.wide(store.read_metrics(info.dir, problems=problems))
        verdict = ph.criterion(frame, cfg).line
    except UsageError:
        pass
    except Exception as e:  # noqa: BLE001 - a config this version cannot rebuild: the recorded verdict stands
        problems.append(f"verdict not recomputed ({e.__class__.__name__}: {e})")
    for p in problems:
        print(f"phenomon: warning: {p}", file=sys.stderr)
    print(f"verdict    {verdict or '-'}")
    try:
        gv = experiment.group_verdict(ph, _root(args), info.group) if ph is not None else None
    except Exception as e:  # noqa: BLE001 - the same for the group's verdict
        print(f"phenomon: warning: group verdict unavailable ({e.__class__.__name__}: {e})", file=sys.stderr)
        gv = None
    if gv is not None:
        print(f"group      {gv.line}")
    return 0


def cmd_stop(args, argv) -> int:
    info = store.find_run(_root(args), args.run)
    line = store.stop_run(info)
    print(line)
    return 0 if info.state in ("running", "skew") else 1


def cmd_demo(args, argv) -> int:
    from phenomon.demo import run_demo

    return run_demo(_root(args), max_steps=args.max_steps, accelerator=args.accelerator)


def cmd_tui(args, argv) -> int:
    from phenomon import registry
    from phenomon.runner import prepare_root

    if args.phenomenon:
        registry.get(args.phenomenon)
    root = _root(args)
    if args.demo or not args.runs:
        prepare_root(root)  # the default directory (or the demo's) is created; an explicit missing one is reported
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        if args.demo:  # scripted `./phenomon.sh`: the headless demo instead of a full-screen app
            from phenomon.demo import run_demo

            return run_demo(root)
        raise UsageError("the monitor needs a terminal; use `phenomon ls` or `phenomon demo` in scripts")
    from phenomon.tui.app import PhenomonApp

    message = PhenomonApp(root, args.phenomenon, demo=args.demo).run()
    if message:
        print(f"phenomon: {message}")
    return 0


def cmd_score(args, argv) -> int:
    import json

    import polars as pl

    from phenomon import catalog, registry, scorecard
    from phenomon.scorecard import render

    root = _root(args)
    if not root.exists():
        raise UsageError(f"runs directory {root} does not exist")
    problems: list[str] = []
    store.list_runs(root, errors=problems)  # unreadable run directories: one line each, the rest is scored
    table = scorecard.scorecard(root, problems)
    for p in problems:
        print(f"phenomon: warning: {p}", file=sys.stderr)
    if args.phenomenon:
        registry.get(args.phenomenon)
        table = table.filter(pl.col("phenomenon") == args.phenomenon) if table.height else table
    if table.height and not args.all:
        table = table.filter(pl.col("signal").is_in(catalog.MAIN_SIGNALS))
    if args.json:
        print(json.dumps(render.json_rows(table) if table.height else [], indent=1))
        return 0
    if table.height == 0:
        print(f"no scored runs in {root} (runs need an outcome metric and signals)")
        return 0
    for line in render.text_rows(table):
        print(line)
    print(render.LEGEND)
    return 0


def cmd_report(args, argv) -> int:
    from phenomon.report import write_report

    errors: list[str] = []
    store.list_runs(_root(args), errors=errors)
    for e in errors:  # unreadable run directories: one line each, the report covers the rest
        print(f"phenomon: warning: {e}", file=sys.stderr)
    paths = write_report(_root(args), args.group, Path(args.out))
    for p in paths:
        print(p)
    return 0


def cmd_hypothesis(args, argv) -> int:
    from phenomon import hypotheses as H

    if args.hcmd is None:  # bare `phenomon hypothesis`: its help
        build_parser()._subparsers._group_actions[0].choices["hypothesis"].print_help()
        return 0
    root = _root(args)
    if args.hcmd == "add":
        h = H.add(root, args.text, args.signal, args.phenomenon, args.expect, args.threshold)
        print(f"registered {h.id}: {h.text!r} ({h.signal} {h.expect} {h.threshold} on {h.phenomenon})")
        return 0
    if args.hcmd == "withdraw":
        H.withdraw(root, args.id)
        print(f"withdrew {args.id}")
        return 0
    problems: list[str] = []
    hs = H.load(root, problems)
    for p in problems:
        print(f"phenomon: warning: {p}", file=sys.stderr)
    if not hs:
        print(f"no hypotheses registered in {root}")
        return 0
    for h in hs:
        head = f"{h.id}  {h.text!r}  [{h.signal} {h.expect} {float(h.threshold):g} on {h.phenomenon}]"
        if args.hcmd == "list":
            print(head)
            continue
        status, why = H.check(root, h)
        print(f"{status.upper():<16} {head}: {why}")
    return 0


# ------------------------------------------------------------------------------------------ invariance


def _add_invariance_command(sub) -> None:
    iv = sub.add_parser("invariance", help="do a finished run's signals move under function-preserving ReLU "
                                           "rescalings of its saved weights? (writes invariance.json)")
    iv.add_argument("run", help="run id, unique id prefix, or run directory")
    iv.add_argument("--runs")


def cmd_invariance(args, argv) -> int:
    info = store.find_run(_root(args), args.run)
    import torch

    from phenomon import invariance  # torch: only for this command

    torch.set_num_threads(1)  # as runs do: on 2 busy cores more threads cost 5x the CPU time for no gain
    try:
        report = invariance.check_run(info.dir)
    except (ValueError, KeyError, TypeError) as e:  # a config or model the check cannot rebuild: one line
        raise UsageError(f"{info.id}: {e}") from None
    print(f"run {info.id}")
    print(invariance.table(report))
    return 0



COMMANDS = {"tui": cmd_tui, "phenomena": cmd_phenomena, "signals": cmd_signals, "run": cmd_run, "ls": cmd_ls,
            "show": cmd_show, "stop": cmd_stop, "demo": cmd_demo, "experiment": experiment.cmd_experiment, "score": cmd_score,
            "report": cmd_report, "hypothesis": cmd_hypothesis,
            "invariance": cmd_invariance}

if __name__ == "__main__":  # pragma: no cover - after every command is defined (`python -m phenomon.cli score`)
    raise SystemExit(main())
