"""The report's edge-of-stability figure: sharpness against each configuration's 2/η, and the per-step loss."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from phenomon import store


def figure(runs: list, out: Path, plt) -> list[Path]:
    """Left: sharpness over steps (mean over seeds, min–max band), each configuration's 2/η dashed in its colour.
    Right: the per-step training loss of each configuration's first seed (log y): the short-range oscillation under
    the long-range fall."""
    by_label: dict[str, list] = {}
    for r in sorted(runs, key=lambda r: (store.label_of(r.manifest), r.manifest.get("seed") or 0)):
        by_label.setdefault(store.label_of(r.manifest), []).append(r)
    if not by_label:
        return []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, (ax_s, ax_l) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, (label, rs) in enumerate(by_label.items()):
        c = colors[i % len(colors)]
        frames = [store.wide(store.read_metrics(r.dir, problems=[])) for r in rs]
        sharp = [f.select("step", "eos/sharpness", "eos/threshold").drop_nulls() for f in frames
                 if {"eos/sharpness", "eos/threshold"} <= set(f.columns)]
        if sharp:
            b = store.mean_band(pl.concat(sharp), "step", "eos/sharpness").collect()
            ax_s.plot(b["step"], b["mean"], color=c, lw=1, label=f"{label} (n={len(sharp)})")
            if len(sharp) > 1:
                ax_s.fill_between(b["step"], b["lo"], b["hi"], color=c, alpha=0.2)
            thr = pl.concat(sharp).group_by("step").agg(pl.col("eos/threshold").mean()).sort("step")
            ax_s.plot(thr["step"], thr["eos/threshold"], "--", color=c, lw=0.9)
        f = frames[0]
        if "train/step_loss" in f.columns:
            g = f.select("step", "train/step_loss").drop_nulls()
            ax_l.plot(g["step"], g["train/step_loss"], color=c, lw=0.6, label=f"{label} (seed {rs[0].manifest.get('seed')})")
    ax_s.set_xlabel("optimiser step")
    ax_s.set_ylabel("sharpness λmax (dashed: 2/η)")
    ax_s.set_title("sharpness rises to 2/η and hovers there", fontsize=9)
    ax_l.set_xlabel("optimiser step")
    ax_l.set_ylabel("training loss at each step")
    ax_l.set_yscale("log")
    ax_l.set_title("the loss falls over long windows, oscillates over short ones", fontsize=9)
    if ax_s.has_data():
        ax_s.legend(fontsize=7)
    if ax_l.has_data():
        ax_l.legend(fontsize=7)
    fig.suptitle(f"edge of stability ({sum(len(v) for v in by_label.values())} runs)")
    fig.tight_layout()
    p = out / "edge_of_stability_sharpness.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return [p]
