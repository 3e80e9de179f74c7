"""Emergence as a metric artefact: answer metrics on hand-made predictions, abruptness on hand-made curves, the
addition data, the sweep verdict on planted numbers, a tiny real run, bad input."""

from __future__ import annotations

import math

import polars as pl
import pytest
import torch

from phenomon import cli, experiment, registry, report, runner, store
from phenomon.datamodules.addition import addition_split, answers, digits, distinct_pairs
from phenomon.models.emergence import answer_metrics, edit_distance
from phenomon.phenomena.emergence.verdict import abruptness, group_criterion, judge

EM = registry.get("emergence")


# ------------------------------------------------------------------------------------------ metrics


def test_exact_match_token_accuracy_and_edit_distance_on_known_answers():
    target = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8]])
    pred = torch.tensor([[1, 2, 3, 4],    # all right
                         [1, 2, 3, 9],    # one substitution
                         [2, 3, 4, 0],    # shifted left: 2 edits (delete 1, insert 0), 0 tokens in place
                         [0, 0, 0, 0]])   # all wrong
    m = answer_metrics(pred, target)
    assert m["exact_match"] == 0.25
    assert m["token_acc"] == pytest.approx((4 + 3 + 0 + 0) / 16)
    assert edit_distance(pred, target).tolist() == [0.0, 1.0, 2.0, 4.0]
    assert m["edit_distance"] == pytest.approx(7 / 4)
    # per position accuracy 2/4, 2/4, 2/4, 1/4: exact match if the positions erred independently
    assert m["exact_pred"] == pytest.approx(0.5 ** 3 * 0.25)
    assert [m[f"exact_match_{j}"] for j in (1, 2, 3)] == [0.5, 0.5, 0.5]


def test_answer_log_likelihood_sums_the_k_tokens():
    target = torch.tensor([[0, 1], [1, 1]])
    p = torch.tensor([[[0.5, 0.5], [0.25, 0.75]], [[0.1, 0.9], [0.2, 0.8]]])
    m = answer_metrics(p.argmax(-1), target, p.log())
    assert m["answer_ll"] == pytest.approx((math.log(0.5 * 0.75) + math.log(0.9 * 0.8)) / 2)
    assert m["loss"] == pytest.approx(-(math.log(0.5) + math.log(0.75) + math.log(0.9) + math.log(0.8)) / 4)


def test_edit_distance_matches_a_plain_levenshtein():
    def lev(a, b):
        d = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            prev, d[0] = d[0], i
            for j, y in enumerate(b, 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
        return d[-1]

    g = torch.Generator().manual_seed(0)
    pred, target = torch.randint(0, 3, (200, 6), generator=g), torch.randint(0, 3, (200, 6), generator=g)
    assert edit_distance(pred, target).tolist() == [lev(a, b) for a, b in zip(pred.tolist(), target.tolist())]


# ------------------------------------------------------------------------------------------ abruptness


def test_abruptness_of_a_step_is_one_and_of_a_line_one_over_n_minus_one():
    assert abruptness([0, 0, 0, 1, 1, 1]) == 1.0
    assert abruptness([0.0, 0.2, 0.4, 0.6, 0.8, 1.0]) == pytest.approx(1 / 5)
    assert abruptness([3, 2, 1]) == pytest.approx(0.5)  # falling curves too (edit distance)
    assert abruptness([0.5, 0.5, 0.5]) is None, "a flat curve has no abruptness, not 0"
    assert abruptness([1.0]) is None


def _sweep(p: dict[int, list[float]], k: int, toggles: str = "", independent: bool = True) -> pl.DataFrame:
    """Planted final rows: per width, per seed, a per-token accuracy p; exact match p^k (independent errors)."""
    rows = []
    for w, ps in p.items():
        for s, q in enumerate(ps):
            em = q ** k if independent else q
            rows.append({"toggles": toggles, "seed": s, "width": w, "final/exact_match": em, "final/token_acc": q,
                         "final/exact_pred": q ** k, "final/edit_distance": k * (1 - q),
                         "final/answer_ll": k * math.log(max(q, 1e-3)), "final/k": float(k)})
    return pl.DataFrame(rows)


def test_verdict_calls_a_smooth_token_curve_with_a_sharp_exact_match_an_artefact():
    # per-token accuracy rises by equal steps; exact match = p^5 stays near 0, then shoots up at the end
    p = {w: [0.3 + 0.1 * i + 0.01 * s for s in range(3)] for i, w in enumerate((4, 8, 16, 32, 64, 128, 256))}
    v = group_criterion(_sweep(p, 5), EM.defaults())
    assert v.effect is True, v.line
    ab = v.numbers["abruptness"]
    assert ab["token_acc"]["mean"] == pytest.approx(1 / 6, abs=1e-6)
    assert ab["exact_match"]["mean"] > 0.3 and ab["exact_match"]["n"] == 3 and ab["exact_match"]["lo"] is not None
    assert v.numbers["gap_exact_vs_token"]["lo"] > 0
    assert "n < 3" not in v.line and "metric artefact" in v.line


def test_verdict_refuses_when_exact_match_is_not_the_per_token_product():
    p = {w: [0.3 + 0.1 * i] * 3 for i, w in enumerate((4, 8, 16, 32, 64, 128, 256))}
    v = group_criterion(_sweep(p, 5, independent=False), EM.defaults())  # exact match = p: correlated errors
    assert v.effect is False and "misses exact match" in v.line


def test_verdict_is_undecided_while_the_seeds_disagree():
    widths = (4, 8, 16, 32, 64, 128, 256)
    # seed 0: per-token accuracy rises by equal steps (exact match sharper); seeds 1, 2: per-token accuracy is itself
    # a step, so exact match (its 5th power) is no sharper: the gap's interval straddles 0
    p = {w: [0.3 + 0.1 * i, 0.3 if i < 3 else 0.9, 0.3 if i < 4 else 0.9] for i, w in enumerate(widths)}
    v = group_criterion(_sweep(p, 5), EM.defaults())
    assert v.effect is None and v.line.startswith("undecided") and "1 of 3 seeds" in v.line, v.line
    assert v.numbers["gap_exact_vs_token"]["lo"] < 0 < v.numbers["gap_exact_vs_token"]["hi"]


def test_judge_needs_three_widths_and_says_when_there_is_no_interval():
    t = _sweep({4: [0.3], 8: [0.6]}, 5).rename(lambda c: c.removeprefix("final/"))
    assert judge(t, 5).effect is None
    one = _sweep({4: [0.3], 8: [0.5], 16: [0.7], 32: [0.9]}, 5)
    v = group_criterion(one, EM.defaults())
    assert "no interval: n < 3" in v.line and v.effect is None, "one seed decides nothing"


# ------------------------------------------------------------------------------------------ data


@pytest.mark.parametrize("k", [2, 5])
def test_addition_answers_are_right_k_tokens_and_disjoint_from_test(k):
    (xtr, ytr), (xte, yte) = addition_split(k, 3000, 500, seed=1)
    assert xtr.shape[1] == 2 * k and ytr.shape[1] == k and yte.shape == (500, k)
    p = 10 ** torch.arange(k)
    a, b = (xtr[:, :k] * p).sum(1), (xtr[:, k:] * p).sum(1)
    assert torch.equal((ytr * p).sum(1), (a + b) % 10 ** k)
    assert int(ytr.max()) <= 9 and int(ytr.min()) >= 0
    ids = lambda x: set(((x[:, :k] * p).sum(1) * 10 ** k + (x[:, k:] * p).sum(1)).tolist())  # noqa: E731
    assert not ids(xtr) & ids(xte), "no test pair is trained on"
    assert len(ids(xtr)) == len(xtr), "train pairs are distinct"


def test_small_k_trains_on_every_pair_not_in_test_and_digits_are_least_significant_first():
    (xtr, _), (xte, _) = addition_split(1, 1000, 20, seed=0)
    assert len(xtr) == 80 and len(xte) == 20
    assert digits(torch.tensor([907]), 3).tolist() == [[7, 0, 9]]
    assert answers(torch.tensor([95]), torch.tensor([17]), 2).tolist() == [[2, 1]]  # 112 mod 100
    assert torch.equal(distinct_pairs(50, 5, 3)[:20], distinct_pairs(20, 5, 3))


# ------------------------------------------------------------------------------------------ runs


def test_tiny_sweep_end_to_end_logs_every_metric_signals_and_the_group_verdict(tmp_path):
    opts = lambda: runner.RunOptions(root=tmp_path, stream=open("/dev/null", "w"))  # noqa: E731
    for w in (2, 8, 32):
        cfg = EM.resolve(None, ["k=2", f"width={w}", "max_steps=60", "eval_every=30", "train_size=500",
                                "test_size=200"])
        info = runner.run(EM, cfg, opts())
        assert info.state == "finished"
    runs = store.list_runs(tmp_path)
    f = store.wide(store.read_metrics(runs[0].dir))
    for col in ("test/exact_match", "test/token_acc", "test/edit_distance", "test/answer_ll", "test/exact_pred",
                "test/exact_match_1", "final/score", "signal/weight_norm", "signal/margin", "signal/sharpness",
                "signal/softmax_collapse", "null/random_walk"):
        assert col in f.columns, col
    assert not runs[0].manifest.get("signals_dropped"), "every signal applies to k-token answers"
    assert (runs[0].dir / "invariance.json").exists()
    v = experiment.group_verdict(EM, tmp_path, runs[0].group)
    assert v.effect is None and v.numbers["seeds"] == 1 and v.numbers["widths"] == [2, 8, 32], "one seed: no interval"
    written = {p.name for p in report.write_report(tmp_path, None, tmp_path / "report")}
    assert {"emergence_curves.png", "emergence_signals.png", "report.md"} <= written
    assert "abruptness" in (tmp_path / "report" / "report.md").read_text()


def test_metric_toggle_picks_the_score_and_k_toggle_shortens_the_answer():
    cfg = EM.resolve(None, [], ["metric"])
    assert cfg.metric == "token_acc" and EM.group_of(cfg) == EM.group_of(EM.defaults())
    assert EM.resolve(None, [], ["k"]).k == 2
    assert EM.sweep_field() == "width" and EM.sweep_values(EM.defaults()) == EM.defaults().widths


@pytest.mark.parametrize("sets, message", [
    (["k=0"], "k (answer tokens) must be an integer in 1…9, got 0"),
    (["k=-3"], "got -3"),
    (["k=12"], "got 12"),
    (["k=1", "test_size=100"], "leaves no pair to train on"),
    (["widths=4,4,8"], "at least 3 distinct widths"),
])
def test_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys, sets, message):
    args = ["run", "emergence", "--runs", str(tmp_path / "runs")]
    for s in sets:
        args += ["--set", s]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# ------------------------------------------------------------------------------------------ monitor


async def test_monitor_plots_emergence_runs_against_width_with_its_toggles(runs):
    from textual.widgets import DataTable, Static

    from phenomon.tui.screens.compare import CompareScreen
    from phenomon.tui.widgets.chart import LineChart
    from tests.test_tui_app import SIZE, FakeLauncher, app_for, until

    ids = []
    for width, em in ((4, 0.0), (16, 0.01), (64, 0.6)):
        rid = f"em-w{width}"
        m = store.new_manifest(rid, "emergence", config={"width": width, "k": 5, "seed": 0}, seed=0, toggles=[],
                               group="emergence-g")
        w = store.RunWriter(runs / rid, m, background=False)
        w.log({"test/acc": em, "train/acc": em, "test/loss": 1 - em, "train/loss": 1 - em, "final/score": em}, 2000)
        w.close("finished")
        ids.append(rid)
    app = app_for(runs, launch_fn=FakeLauncher())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.screen.query_one(DataTable).row_count == len(ids))
        bar = str(app.screen.query_one("#toggles").render())
        assert [t.split()[:2] for t in bar.splitlines()[1:]] == [["m", "metric"], ["L", "log_likelihood"], ["d", "k"]]
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        chart = app.screen.query_one("#chart-test-acc", LineChart)
        await until(pilot, lambda: len(chart.series) == 1)
        assert chart.title == "test/acc vs width" and chart.series[0].x.tolist() == [4.0, 16.0, 64.0]
        assert "x: width" in str(app.screen.query_one("#compare-status", Static).render())
