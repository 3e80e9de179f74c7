"""`phenomon report`: the figures a user would put in a paper, and a Markdown summary with the numbers."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from phenomon import catalog, scorecard, store
from phenomon.store.axis import ConfigField, Step
from phenomon.config import UsageError

SHOWN_SIGNALS = tuple(s for s in catalog.MAIN_SIGNALS if s not in catalog.NULLS)


def write_report(root: Path, group: str | None, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = store.list_runs(root)
    if group:
        runs = [r for r in runs if r.group == group or r.id == group]
        if not runs:
            groups = sorted({r.group for r in store.list_runs(root)})
            raise UsageError(f"no runs in group {group!r}; groups: {', '.join(groups) or 'none'}")
    if not runs:
        raise UsageError(f"no runs in {root}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create {out}: {e.strerror}") from None
    problems: list[str] = []
    # whole step curves are read only for phenomena plotted over steps; the others use the scorecard's points
    on_steps = [r for r in runs if isinstance(scorecard.unit_of(r.phenomenon).x_axis, Step)]
    by_label: dict[tuple[str, str], list[pl.DataFrame]] = {}
    for r in on_steps:
        by_label.setdefault((r.phenomenon, store.label_of(r.manifest)), []).append(
            store.wide(store.read_metrics(r.dir, problems=problems)))
    written = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    # the scorecard's points, read once: the sweep and round figures and the scorecard below both use them
    pts = scorecard.series(runs, problems)

    # 1. the phenomenon curves, toggles overlaid, seeds as mean and band
    for ph in sorted({r.phenomenon for r in runs}):
        axis = scorecard.unit_of(ph).x_axis
        if not isinstance(axis, Step):  # a sweep or pruning rounds: plot against that axis, from the scorecard's points
            own = _own_figures(ph, [r for r in runs if r.phenomenon == ph], out, plt)
            written += own + _axis_figures(ph, axis, pts.filter(pl.col("phenomenon") == ph),
                                           [r for r in runs if r.phenomenon == ph], out, colors, plt,
                                           outcome_figure=not own)
            continue
        # this phenomenon's configurations, each with its colour (the same in both figures)
        mine = [(colors[i % len(colors)], label, fs)
                for i, ((p, label), fs) in enumerate(sorted(by_label.items())) if p == ph]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for color, label, fs in mine:
            for ax, split in zip(axes, ("acc", "loss")):
                for stage, ls in (("train", "--"), ("test", "-")):
                    col = f"{stage}/{split}"
                    if not any(col in f.columns for f in fs):
                        continue
                    b = store.mean_band(pl.concat([f.select("step", col) for f in fs if col in f.columns]), "step",
                                        col).filter(pl.col("step") > 0).collect()
                    ax.plot(b["step"], b["mean"], ls, color=color, label=f"{label} {stage}")
                    if len(fs) > 1:
                        ax.fill_between(b["step"], b["lo"], b["hi"], color=color, alpha=0.2)
        for color, label, fs in mine:  # landmarks: where each configuration memorised and generalised (mean over seeds)
            marks = _landmarks([r for r in runs if r.phenomenon == ph and store.label_of(r.manifest) == label])
            for name, (x, ls) in marks.items():
                for ax in axes:
                    ax.axvline(x, color=color, ls=ls, lw=0.8, alpha=0.8)
                axes[0].annotate(name, (x, 0.02), xycoords=("data", "axes fraction"), rotation=90, fontsize=6,
                                 color=color, va="bottom", ha="right")
        for ax, split in zip(axes, ("accuracy", "loss")):
            ax.set_xscale("log")
            ax.set_xlabel("optimiser step (log)")
            ax.set_ylabel(f"{split} (train dashed, test solid)")
        if axes[0].has_data():
            axes[1].legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="upper left",
                           bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
        if axes[1].has_data():
            axes[1].set_yscale("log")
        fig.suptitle(f"{ph}: toggles overlaid ({len([r for r in runs if r.phenomenon == ph])} runs)")
        fig.tight_layout()
        p = out / f"{store.slug(ph)}_curves.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        written.append(p)

        # 2. the signals of the same runs, one panel each, on the same (log) step axis
        shown = [s for s in SHOWN_SIGNALS if any(s in f.columns for _, _, fs in mine for f in fs)]
        if shown:
            ncol = 3
            nrow = -(-len(shown) // ncol)
            fig, axes = plt.subplots(nrow, ncol, figsize=(12, 2.6 * nrow), squeeze=False)
            for ax, s in zip(axes.flat, shown):
                for color, label, fs in mine:
                    for f in fs:
                        if s not in f.columns:
                            continue
                        g = f.select("step", s).drop_nulls().filter(pl.col("step") > 0)
                        ax.plot(g["step"], g[s], color=color, lw=1, label=label)
                ax.set_title(s.removeprefix("signal/"), fontsize=9)
                ax.set_xscale("log")
                ax.set_xlabel("optimiser step (log)", fontsize=7)
                ax.set_ylabel("value", fontsize=7)
            for ax in list(axes.flat)[len(shown):]:
                ax.axis("off")
            handles, labels = axes.flat[0].get_legend_handles_labels()
            uniq = dict(zip(labels, handles))
            fig.suptitle(f"{ph}: explanation signals over training (one line per run)")
            fig.tight_layout(rect=(0, 0, 0.86, 1))
            fig.legend(uniq.values(), uniq.keys(), loc="upper left", bbox_to_anchor=(0.865, 0.95), fontsize=7)
            p = out / f"{store.slug(ph)}_signals.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            written.append(p)
        written += _own_figures(ph, [r for r in runs if r.phenomenon == ph], out, plt)

    # 3. the scorecard heat map
    table = scorecard.score(runs, problems, pts)
    md = [f"# phenomon report{f' — {group}' if group else ''}", "", "## Runs", "",
          "| run | phenomenon | toggles | seed | status | verdict |", "|---|---|---|---|---|---|"]
    for r in runs:
        m = r.manifest
        md.append(f"| {r.id} | {r.phenomenon} | {store.label_of(m)} | {m.get('seed')} | {r.state} | {m.get('verdict') or ''} |")
    if table.height:
        phenomena = sorted(p for p in table["phenomenon"].unique().to_list() if p != "(all)")
        md += ["", "## Group verdicts", ""] + _group_verdicts(root, runs, problems)
        for ph in phenomena:
            t = table.filter((pl.col("phenomenon") == ph)
                             & pl.col("signal").map_elements(catalog.shown_by_default, return_dtype=pl.Boolean))
            if t.height == 0:
                continue
            p = _heat_map(t, f"{ph}: scorecard (each column on its own scale)",
                          out / f"{store.slug(ph)}_scorecard.png", plt)
            written.append(p)
            md += ["", f"## Scorecard — {ph}", "", scorecard_markdown(t), "",
                   *[f"- **{r['signal']}**: {r['verdict']}" for r in t.iter_rows(named=True)]]
        if len(phenomena) > 1:
            t = table.filter((pl.col("phenomenon") == "(all)")
                             & pl.col("signal").map_elements(catalog.shown_by_default, return_dtype=pl.Boolean))
            md += ["", "## Across phenomena (pooled, in addition to the tables above)", "",
                   "| signal | units | tracks in | verdict |", "|---|---|---|---|"]
            md += [f"| {r['signal']} | {r['n_units']} | {r['generality']} | {r['verdict']} |" for r in t.iter_rows(named=True)]
    md += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in written]
    if problems:
        md += ["", "## Problems met while reading", ""] + [f"- {p}" for p in problems]
    p = out / "report.md"
    p.write_text("\n".join(md) + "\n")
    return [*written, p]


def _own_figures(ph: str, runs: list, out: Path, plt) -> list[Path]:
    """The phenomenon's own figures (`Phenomenon.figures`), if it has any: on a sweep they replace the generic
    outcome figure."""
    from phenomon import registry

    try:
        draw = registry.get(ph).figures
    except UsageError:  # a foreign run
        return []
    return list(draw(runs, out, plt)) if draw is not None else []


def _axis_figures(ph: str, axis, pts: pl.DataFrame, runs: list, out: Path, colors, plt,
                  outcome_figure: bool = True) -> list[Path]:
    """Outcome (unless the phenomenon drew its own) and signals against a sweep field or the pruning round: mean
    over seeds, min-max band."""
    if pts.height == 0:
        return []
    pts = pts.with_columns(store.toggles_label_expr("toggles"))
    labels = sorted(pts["label"].unique().to_list())
    xlabel = axis.label if isinstance(axis, ConfigField) else "pruning round"

    def draw(ax, df: pl.DataFrame, col: str) -> None:
        for i, lab in enumerate(labels):
            b = store.mean_band(df.filter(pl.col("label") == lab), "x", col).collect()
            if b.height:
                ax.plot(b["x"], b["mean"], "o-", ms=3, color=colors[i % len(colors)], label=lab)
                ax.fill_between(b["x"], b["lo"], b["hi"], color=colors[i % len(colors)], alpha=0.2)
        if isinstance(axis, ConfigField):
            ax.set_xscale("log")

    written = [_outcome_figure(ph, axis, runs, out, colors, plt)] if outcome_figure else []
    shown = [s for s in SHOWN_SIGNALS if s in set(pts["signal"].unique().to_list())]
    if shown:
        nrow = -(-len(shown) // 3)
        fig, axes = plt.subplots(nrow, 3, figsize=(12, 2.6 * nrow), squeeze=False)
        for ax, s in zip(axes.flat, shown):
            draw(ax, pts.filter(pl.col("signal") == s), "value")
            ax.set_title(s.removeprefix("signal/"), fontsize=9)
        for ax in list(axes.flat)[len(shown):]:
            ax.axis("off")
        for ax in axes.flat:
            ax.set_xlabel(xlabel, fontsize=7)
            ax.set_ylabel("final value", fontsize=7)
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.suptitle(f"{ph}: explanation signals against {xlabel} (mean over seeds, min–max band)")
        fig.tight_layout(rect=(0, 0, 0.86, 1))
        fig.legend(handles, names, loc="upper left", bbox_to_anchor=(0.865, 0.95), fontsize=7)
        p = out / f"{store.slug(ph)}_signals.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def _landmarks(runs: list) -> dict[str, tuple[float, str]]:
    """Memorisation (train ≥ 99%) and generalisation (test ≥ 95%) steps from the runs' verdicts, mean over seeds."""
    out = {}
    for key, name, ls in (("train_99_step", "memorised", ":"), ("test_95_step", "grokked", "--")):
        xs = [(r.manifest.get("verdict_numbers") or {}).get(key) for r in runs]
        xs = [float(x) for x in xs if isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0]
        if xs and len(xs) == len(runs):  # a landmark only where every seed reached it
            out[name] = (sum(xs) / len(xs), ls)
    return out


def _final_rows(runs: list, names: tuple[str, ...]) -> pl.DataFrame:
    """The last value of each of `names` per (run, round), with the run's label and seed."""
    parts = []
    for r in runs:
        d = store.read_metrics(r.dir, problems=[], columns=("name", "value", "round"))
        d = d.filter(pl.col("name").is_in(list(names)) & pl.col("value").is_not_null())
        if d.height:
            parts.append(d.group_by("round", "name").agg(pl.col("value").last()).with_columns(
                run=pl.lit(r.id), label=pl.lit(store.label_of(r.manifest)),
                width=pl.lit(float((r.manifest.get("config") or {}).get("width") or 0))))
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts, how="vertical_relaxed").pivot(on="name", index=["run", "label", "width", "round"],
                                                          values="value")


def _meta(ph: str):
    """The registry entry of `ph`, or None for a foreign run's phenomenon."""
    from phenomon import registry

    try:
        return registry.get(ph)
    except UsageError:
        return None


def _outcome_figure(ph: str, axis, runs: list, out: Path, colors, plt) -> Path:
    """A sweep: test and train error against width, the interpolation threshold marked. Pruning rounds: accuracy
    against the weights remaining (log, sparser to the right), the dense network as a reference line."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    outcome = scorecard.unit_of(ph).outcome
    meta = _meta(ph)
    series = getattr(meta, "figure_series", ())
    if isinstance(axis, ConfigField):
        train = outcome.replace("test", "train")
        pairs = [(c, "s--" if "train" in c else "o-", name) for c, name in series] or \
            [(outcome, "o-", "test"), (train, "s--", "train")]
        rows = _final_rows(runs, tuple(c for c, _, _ in pairs))
        for i, lab in enumerate(sorted(rows["label"].unique().to_list()) if rows.height else []):
            d = rows.filter(pl.col("label") == lab).rename({"width": "x"})
            for j, (col, ls, what) in enumerate(pairs):
                c = colors[(i + j // 2) % len(colors)] if series else colors[i % len(colors)]
                if col not in d.columns:
                    continue
                b = store.mean_band(d.drop_nulls(col), "x", col).collect()
                ax.plot(b["x"], b["mean"], ls, ms=3, color=c, label=f"{lab} {what}")
                ax.fill_between(b["x"], b["lo"], b["hi"], color=c, alpha=0.15)
                if what.endswith("train"):  # the interpolation threshold: the first width fitting the train set (≤ 1%)
                    fit = b.filter(pl.col("mean") <= 0.01)
                    if fit.height:
                        ax.axvline(fit["x"][0], color=c, ls=":", lw=1)
                        ax.annotate(f"interpolation ({lab})", (fit["x"][0], 0.98), xycoords=("data", "axes fraction"),
                                    rotation=90, fontsize=6, color=c, va="top", ha="right")
        ax.set_xscale("log")
        if rows.height:  # the swept values themselves as ticks (log ticks at 2×10¹, 3×10¹ … collide)
            from matplotlib.ticker import NullLocator

            xs = sorted(set(rows["width"].to_list()))
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(f"{axis.label} (log)")
        ax.set_ylabel("error (test solid, train dashed)")
    else:
        rows = _final_rows(runs, (outcome, "round/test_acc", axis.name))
        acc = "round/test_acc" if rows.height and "round/test_acc" in rows.columns else outcome
        dense = None
        for i, lab in enumerate(sorted(rows["label"].unique().to_list()) if rows.height else []):
            d = rows.filter(pl.col("label") == lab)
            if axis.name not in d.columns or acc not in d.columns:
                continue
            name = "ticket" if lab == "baseline" else lab
            d = d.with_columns(x=(pl.col(axis.name) * 100).round(1))
            b = store.mean_band(d.drop_nulls(acc), "x", acc).collect()
            c = colors[i % len(colors)]
            ax.plot(b["x"], b["mean"], "o-", ms=3, color=c, label=name)
            ax.fill_between(b["x"], b["lo"], b["hi"], color=c, alpha=0.15)
            d0 = d.filter(pl.col("round") == 0)
            if d0.height and dense is None:
                dense = float(d0[acc].mean())
        if dense is not None:
            ax.axhline(dense, color="k", ls="--", lw=0.8, label=f"dense ({dense:.3f})")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("weights remaining, % (log; sparser to the right)")
        ax.set_ylabel(f"{acc} (mean of the round's last evaluations)")
    if ax.has_data():
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    claim = getattr(meta, "claim", "")
    fig.suptitle(f"{ph}: {'the claim measured' if claim else 'toggles overlaid'} (mean over seeds, min–max band)")
    if claim:  # the paper's claim the figure checks, as its caption
        import textwrap

        fig.text(0.01, 0.01, "Claim: " + "\n".join(textwrap.wrap(claim, 150)), fontsize=7, va="bottom")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    else:
        fig.tight_layout()
    p = out / f"{store.slug(ph)}_curves.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


HEAT_COLS = (("tracking", "Δ-ρ", (-1, 1), "RdBu"), ("null_margin", "vs null", (-0.5, 0.5), "RdBu"),
             ("partial_norm", "partial ρ\n| norm", (-1, 1), "RdBu"), ("partial_step", "partial ρ\n| step", (-1, 1), "RdBu"),
             ("lead", "onset lead\n(fraction)", (-0.3, 0.3), "PuOr"), ("r2_25", "LOO R²\n@25%", (0, 1), "Greens"),
             ("intervention", "intervention\nagreement", (0, 1), "Greens"))


def _heat_map(t: pl.DataFrame, title: str, path: Path, plt) -> Path:
    """One colour scale per column (a correlation is −1…1, an R² 0…1, a lead a fraction of the run); n/a in grey."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    cols = [c for c in HEAT_COLS if c[0] in t.columns]
    rgba = np.zeros((t.height, len(cols), 4))
    fig, ax = plt.subplots(figsize=(1.3 * len(cols) + 3, 0.38 * t.height + 1.8))
    for j, (col, _, (lo, hi), cmap) in enumerate(cols):
        vals = t[col].cast(pl.Float64).to_numpy()
        rgba[:, j] = colormaps[cmap](Normalize(lo, hi, clip=True)(np.nan_to_num(vals)))
        for i, v in enumerate(vals):
            if v != v:
                rgba[i, j] = (0.85, 0.85, 0.85, 1.0)
            ax.text(j, i, "n/a" if v != v else f"{v:+.2f}", ha="center", va="center", fontsize=7)
    ax.imshow(rgba, aspect="auto")
    ax.set_xticks(range(len(cols)), [f"{c[1]}\n[{c[2][0]}…{c[2][1]}]" for c in cols], fontsize=7)
    ax.set_yticks(range(t.height), [f"{s} (n={n})" for s, n in zip(t["signal"], t["n_units"])], fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _group_verdicts(root: Path, runs: list, problems: list[str]) -> list[str]:
    from phenomon import registry
    from phenomon.config import UsageError
    from phenomon.experiment import group_verdict

    lines = []
    for ph_name, group in sorted({(r.phenomenon, r.group) for r in runs}):
        try:
            ph = registry.get(ph_name)
        except UsageError:
            continue
        v = group_verdict(ph, root, group, problems)
        if v is not None:
            lines.append(f"- **{group}** ({ph_name}): {v.line}")
    return lines or ["- (no phenomenon here has a group criterion)"]


def scorecard_markdown(t: pl.DataFrame) -> str:
    from phenomon.scorecard.render import ci_cell as _ci

    lines = ["| signal | n | Δ-ρ [95%] | q | vs null | partial ρ given norm | partial ρ given step | onset lead | "
             "LOO R² @25% (norm) | intervention | invariant | explains |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda v, fmt="{:.2f}": "–" if v is None or v != v else fmt.format(v)  # noqa: E731
    yn = lambda v: "–" if v is None else "yes" if v else "no"  # noqa: E731
    for r in t.iter_rows(named=True):
        iv = f"{r['iv_agree']}/{r['iv_pairs']}" if r.get("iv_pairs") else "–"
        lines.append(f"| {r['signal']} | {r['n_units']} | {_ci(r, 'tracking')} | {f(r['q'], '{:.3f}')} | "
                     f"{_ci(r, 'null_margin')} | {_ci(r, 'partial_norm')} | {_ci(r, 'partial_step')} | {_ci(r, 'lead')} | "
                     f"{f(r.get('r2_25'))} ({f(r.get('r2_25_norm'))}) | {iv} | {yn(r.get('invariant'))} | {yn(r.get('explains'))} |")
    return "\n".join(lines)
