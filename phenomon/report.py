"""`phenomon report`: the figures a user would put in a paper, and a Markdown summary with the numbers."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from phenomon import scorecard, store
from phenomon.config import UsageError

SHOWN_SIGNALS = ("signal/weight_norm", "signal/prime_count", "signal/prime_count/scaled10", "signal/magnitude/mean_abs",
                 "signal/fourier_sparsity", "signal/effective_rank", "signal/sharpness", "signal/margin",
                 "signal/softmax_collapse", "signal/grad_norm/snr", "signal/sparsity")


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
    on_steps = [r for r in runs if scorecard._unit_of(r.phenomenon).x_axis == "step"]
    by_label: dict[tuple[str, str], list[pl.DataFrame]] = {}
    for r in on_steps:
        by_label.setdefault((r.phenomenon, store.label_of(r.manifest)), []).append(
            store.wide(store.read_metrics(r.dir, problems=problems)))
    written = []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    # 1. the phenomenon curves, toggles overlaid, seeds as mean and band
    for ph in sorted({r.phenomenon for r in runs}):
        axis = scorecard._unit_of(ph).x_axis
        if axis != "step":  # a sweep or pruning rounds: plot against that axis, from the scorecard's points
            pts = scorecard.series([r for r in runs if r.phenomenon == ph], problems)
            written += _axis_figures(ph, axis, pts, out, colors, plt)
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
        for ax, split in zip(axes, ("accuracy", "loss")):
            ax.set_xscale("log")
            ax.set_xlabel("optimiser step")
            ax.set_ylabel(split)
            if ax.has_data():
                ax.legend(fontsize=7)
        if axes[1].has_data():
            axes[1].set_yscale("log")
        fig.suptitle(f"{ph}: toggles overlaid ({len([r for r in runs if r.phenomenon == ph])} runs)")
        fig.tight_layout()
        p = out / f"{ph}_curves.png"
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
            for ax in list(axes.flat)[len(shown):]:
                ax.axis("off")
            handles, labels = axes.flat[0].get_legend_handles_labels()
            uniq = dict(zip(labels, handles))
            fig.legend(uniq.values(), uniq.keys(), loc="upper right", fontsize=7)
            fig.suptitle(f"{ph}: explanation signals over training")
            fig.tight_layout()
            p = out / f"{ph}_signals.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            written.append(p)

    # 3. the scorecard heat map
    table = scorecard.aggregate(scorecard.per_unit(scorecard.series(runs, problems))) if runs else pl.DataFrame()
    md = [f"# phenomon report{f' — {group}' if group else ''}", "", "## Runs", "",
          "| run | phenomenon | toggles | seed | status | verdict |", "|---|---|---|---|---|---|"]
    for r in runs:
        m = r.manifest
        md.append(f"| {r.id} | {r.phenomenon} | {store.label_of(m)} | {m.get('seed')} | {r.state} | {m.get('verdict') or ''} |")
    if table.height:
        t = table.filter(pl.col("phenomenon") == "(all)") if table["phenomenon"].n_unique() > 2 else \
            table.filter(pl.col("phenomenon") != "(all)")
        cols = ["tracking", "lead", "partial", "partial_mag", "intervention"]
        mat = t.select(cols).to_numpy().astype(float)
        fig, ax = plt.subplots(figsize=(8, 0.4 * t.height + 2))
        im = ax.imshow(mat, cmap="RdBu", vmin=-1, vmax=1, aspect="auto")
        ax.set_xticks(range(len(cols)), ["tracking ρ", "lead", "partial ρ\ngiven norm", "min |partial ρ|\ngiven magnitude",
                                         "intervention"], fontsize=8)
        ax.set_yticks(range(t.height), [s.removeprefix("signal/") for s in t["signal"]], fontsize=8)
        for (i, j), v in __import__("numpy").ndenumerate(mat):
            ax.text(j, i, "" if v != v else f"{v:.2f}", ha="center", va="center", fontsize=7)
        fig.colorbar(im, ax=ax, fraction=0.04)
        ax.set_title("scorecard: which explanations are worth anything")
        fig.tight_layout()
        p = out / "scorecard.png"
        fig.savefig(p, dpi=120)
        plt.close(fig)
        written.append(p)
        md += ["", "## Scorecard", "", scorecard_markdown(t)]
    md += ["", "## Figures", ""] + [f"![{p.stem}]({p.name})" for p in written]
    if problems:
        md += ["", "## Problems met while reading", ""] + [f"- {p}" for p in problems]
    p = out / "report.md"
    p.write_text("\n".join(md) + "\n")
    return [*written, p]


def _axis_figures(ph: str, axis: str, pts: pl.DataFrame, out: Path, colors, plt) -> list[Path]:
    """Outcome and signals against a sweep field or the pruning round: mean over seeds, min-max band."""
    if pts.height == 0:
        return []
    pts = pts.with_columns(store.toggles_label_expr("toggles"))
    labels = sorted(pts["label"].unique().to_list())
    xlabel = "pruning round" if axis.startswith("metric:") else axis.split(":", 1)[1]

    def draw(ax, df: pl.DataFrame, col: str) -> None:
        for i, lab in enumerate(labels):
            b = store.mean_band(df.filter(pl.col("label") == lab), "x", col).collect()
            if b.height:
                ax.plot(b["x"], b["mean"], "o-", ms=3, color=colors[i % len(colors)], label=lab)
                ax.fill_between(b["x"], b["lo"], b["hi"], color=colors[i % len(colors)], alpha=0.2)
        if axis.startswith("config:"):
            ax.set_xscale("log")

    written = []
    outcome = pts.unique(["unit", "x"]).select("label", "x", "outcome")
    fig, ax = plt.subplots(figsize=(7, 4))
    draw(ax, outcome, "outcome")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(scorecard._unit_of(ph).outcome)
    ax.legend(fontsize=7)
    fig.suptitle(f"{ph}: toggles overlaid")
    fig.tight_layout()
    p = out / f"{ph}_curves.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    written.append(p)
    shown = [s for s in SHOWN_SIGNALS if s in set(pts["signal"].unique().to_list())]
    if shown:
        nrow = -(-len(shown) // 3)
        fig, axes = plt.subplots(nrow, 3, figsize=(12, 2.6 * nrow), squeeze=False)
        for ax, s in zip(axes.flat, shown):
            draw(ax, pts.filter(pl.col("signal") == s), "value")
            ax.set_title(s.removeprefix("signal/"), fontsize=9)
        for ax in list(axes.flat)[len(shown):]:
            ax.axis("off")
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="upper right", fontsize=7)
        fig.suptitle(f"{ph}: explanation signals against {xlabel}")
        fig.tight_layout()
        p = out / f"{ph}_signals.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def scorecard_markdown(t: pl.DataFrame) -> str:
    f = store.fmt_value
    lines = ["| signal | phenomenon | tracking ρ | lead | partial ρ given norm | min \\|partial\\| given magnitude | "
             "generality | intervention | nulls | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in t.iter_rows(named=True):
        lines.append(f"| {r['signal'].removeprefix('signal/')} | {r['phenomenon']} | {f(r['tracking'])} | "
                     f"{f(r['lead'])} | {f(r['partial'])} | {f(r['partial_mag'], '{:.2f}')} | {r['generality']} | {f(r['intervention'], '{:.2f}')} | "
                     f"{r['nulls']} | {r['verdict']} |")
    return "\n".join(lines)
