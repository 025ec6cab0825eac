"""The verdict rule and the per-task summary, on constructed inputs."""
import math

import pytest

from minilayerlr.experiments.verdict import RULE, mean_sd, paired_verdict, summarize_task


@pytest.mark.parametrize("a, b, expected", [
    ([1.0], [2.0], "better"),                      # K = 1: the lower loss wins
    ([2.0], [1.0], "worse"),
    ([1.0], [1.0], "tie"),
    ([1, 1, 1, 1, 1], [2, 2, 2, 2, 2], "better"),  # every seed lower
    ([1, 1, 1, 1, 3], [2, 2, 2, 2, 2], "better"),  # K-1 = 4 of 5 lower, mean lower
    ([1, 1, 1, 3, 3], [2, 2, 2, 2, 2], "tie"),     # only 3 of 5 lower although the mean is lower
    ([1, 1, 1, 1, 9], [2, 2, 2, 2, 2], "tie"),     # 4 of 5 lower but the mean is higher
    ([3, 3, 3, 3, 1], [2, 2, 2, 2, 2], "worse"),   # the swapped rule holds
    ([1, 2], [2, 1], "tie"),                       # K = 2: 1 of 2 lower, equal means
    ([1, 1.5], [2, 1], "better"),                  # 1 of 2 lower and the mean lower
    ([math.inf, 3, 1], [2, 2, 2], "worse"),        # a diverged seed makes the mean infinite
    ([math.inf, 1, 1], [2, 2, 2], "tie"),          # ... but lower on 2 of 3 seeds is no win
    ([math.inf], [math.inf], "tie"),
])
def test_paired_verdict_follows_the_stated_rule(a, b, expected):
    assert paired_verdict(a, b) == expected
    flipped = {"better": "worse", "worse": "better", "tie": "tie"}[expected]
    assert paired_verdict(b, a) == flipped  # the rule is antisymmetric


def test_paired_verdict_needs_paired_seeds():
    with pytest.raises(ValueError, match="equal-length"):
        paired_verdict([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="non-empty"):
        paired_verdict([], [])


def test_the_rule_is_written_with_k_minus_one():
    assert "K−1 of the K paired seeds" in RULE and "infinite" in RULE


def test_mean_sd():
    assert mean_sd([1.0, 3.0]) == (2.0, math.sqrt(2.0))
    assert mean_sd([5.0]) == (5.0, 0.0)
    assert mean_sd([1.0, math.inf])[0] == math.inf


def _run(label, lr, seed, loss, times=(0.0, 1.0, 2.0), curve=None, stop=None):
    curve = curve or [10.0, (10.0 + loss) / 2, loss]
    return {"label": label, "lr": lr, "seed": seed, "final_train_loss": loss, "final_metric": 0.5,
            "stop_reason": stop, "wall_time": times[-1], "epochs": 2,
            "grad_equivalents": [0.0, 2.0, 4.0],
            "history": {"time": list(times), "train_loss": curve}}


def test_summary_selects_by_mean_over_seeds_and_flags_the_grid_edges():
    seeds = [0, 1]
    records = [
        # lr 0.1 is best on seed 0 alone, lr 0.3 best on average: the mean decides
        _run("SGD-m", 0.1, 0, 1.0), _run("SGD-m", 0.1, 1, 5.0),
        _run("SGD-m", 0.3, 0, 2.0), _run("SGD-m", 0.3, 1, 2.0),
        _run("SGD-m", 1.0, 0, 3.0), _run("SGD-m", 1.0, 1, math.nan, stop="diverged"),
        _run("LS", None, 0, 1.5, times=(0, 3.0, 6.0)), _run("LS", None, 1, 1.8, times=(0, 3.0, 6.0)),
    ]
    entries = summarize_task(records, {"SGD-m": [0.1, 0.3, 1.0], "LS": [None]}, seeds)
    sgd, ls = entries
    assert sgd["lr"] == 0.3 and not sgd["at_edge"] and sgd["runs_needed"] == 3
    assert sgd["total_time"] == pytest.approx(6.0)  # every grid rate, mean over seeds
    assert ls["rank"] == 1 and sgd["rank"] == 2 and ls["runs_needed"] == 1
    # time to reach SGD-m's mean final loss 2.0: SGD-m at its last epoch, LS at epoch 2 (6 s)
    assert sgd["reach_time"] == 2.0 and ls["reach_time"] == 6.0 and ls["reach_grad_eq"] == 4.0
    edge = summarize_task(records[:4], {"SGD-m": [0.1, 0.3]}, seeds)[0]
    assert edge["lr"] == 0.3 and edge["at_edge"]


def test_summary_says_not_reached():
    records = [_run("SGD-m", 0.1, 0, 1.0), _run("LS", None, 0, 3.0)]
    entries = summarize_task(records, {"SGD-m": [0.1], "LS": [None]}, [0])
    assert entries[1]["reach_time"] is None and entries[1]["reach_grad_eq"] is None
