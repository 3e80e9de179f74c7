"""The report's emergence figure: every metric of the same models against width, one panel each, with the
apparent emergence (the first width whose exact match reaches 0.5) marked and the per-token prediction drawn."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from phenomon import store
from phenomon.phenomena.emergence.verdict import EMERGES_AT, abruptness

PANELS = (("exact_match", "exact match (all k tokens right)"), ("token_acc", "per-token accuracy"),
          ("edit_distance", "token edit distance"), ("answer_ll", "answer log-likelihood (nats)"))


def final_table(runs: list) -> pl.DataFrame:
    """One row per finished run: run id, label, seed, width, k and its `final/*` test metrics (prefix removed), params."""
    rows = []
    for r in runs:
        d = store.read_metrics(r.dir, problems=[], columns=("name", "value"))
        d = d.filter((pl.col("name").str.starts_with("final/") | (pl.col("name") == "params"))
                     & pl.col("value").is_not_null())
        if d.height == 0:
            continue
        cfg = r.manifest.get("config") or {}
        vals = dict(d.group_by("name").agg(pl.col("value").last()).iter_rows())
        rows.append({"run": r.id, "label": store.label_of(r.manifest), "seed": r.manifest.get("seed"),
                     "width": float(cfg.get("width") or 0), "k": int(cfg.get("k") or 0),
                     **{n.removeprefix("final/"): v for n, v in vals.items()}})
    return pl.DataFrame(rows) if rows else pl.DataFrame()


def figure(runs: list, out: Path, plt) -> list[Path]:
    """`emergence_curves.png`: the four metrics against width (log) per variant, mean over seeds with a min–max
    band; on exact match also Π per-position accuracy (dashed) — the prediction from per-token accuracy."""
    t = final_table(runs)
    if t.height == 0 or "exact_match" not in t.columns:
        return []
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for i, lab in enumerate(sorted(t["label"].unique().to_list())):
        d, c = t.filter(pl.col("label") == lab), colors[i % len(colors)]
        k = int(d["k"].max())
        for ax, (col, title) in zip(axes.flat, PANELS):
            if col not in d.columns:
                continue
            b = store.mean_band(d.drop_nulls(col), "width", col).collect()
            a = abruptness(b["mean"].to_list())
            ax.plot(b["width"], b["mean"], "o-", ms=3, color=c,
                    label=f"{lab} (k={k}): abruptness {a:.2f}" if a is not None else f"{lab} (k={k})")
            ax.fill_between(b["width"], b["lo"], b["hi"], color=c, alpha=0.15)
            ax.set_title(title, fontsize=9)
            if col == "exact_match":
                if "exact_pred" in d.columns:
                    p = store.mean_band(d.drop_nulls("exact_pred"), "width", "exact_pred").collect()
                    ax.plot(p["width"], p["mean"], "--", color=c, lw=1, label=f"{lab}: Π per-position accuracy")
                hit = b.filter(pl.col("mean") >= EMERGES_AT)
                if hit.height:  # the landmark: where exact match "emerges"
                    for a2 in axes.flat:
                        a2.axvline(hit["width"][0], color=c, ls=":", lw=0.8)
                    ax.annotate(f"exact match ≥ {EMERGES_AT} ({lab})", (hit["width"][0], 0.02),
                                xycoords=("data", "axes fraction"), rotation=90, fontsize=6, color=c,
                                va="bottom", ha="right")
    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_xlabel("width (log)", fontsize=8)
        if ax.has_data():
            ax.legend(fontsize=6)
    fig.suptitle("emergence: one sweep of models, four metrics (abruptness: largest step / total variation)")
    fig.tight_layout()
    p = Path(out) / "emergence_curves.png"
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return [p]
