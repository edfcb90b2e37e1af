import numpy as np
import pandas as pd
import pytest

from dfdc.core.metrics import binary_metrics, log_loss
from dfdc.inference.aggregate import aggregate_frames, compare_rules, video_score


def test_log_loss_matches_sklearn():
    from sklearn.metrics import log_loss as sk_log_loss

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = rng.uniform(0.001, 0.999, 200)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), rel=1e-9)
    assert log_loss([1, 0], [0.5, 0.5]) == pytest.approx(np.log(2))
    # Certain and wrong is clipped, not infinite.
    assert np.isfinite(log_loss([1], [0.0]))
    m = binary_metrics([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.7])
    assert m["accuracy"] == 0.75 and m["auc"] == 0.75 and m["n"] == 4


def test_mean_and_weighted():
    assert aggregate_frames([0.2, 0.4, 0.9]) == pytest.approx(0.5)
    # Confident frames pull harder than hesitant ones.
    assert aggregate_frames([0.95, 0.55, 0.55], "weighted") > aggregate_frames(
        [0.95, 0.55, 0.55], "mean"
    )
    assert aggregate_frames([], "mean") == 0.5


def test_confident_rule_follows_the_winner():
    many_fake = [0.9] * 14 + [0.1] * 18  # 14 of 32 > 0.8: more than 40 % and more than 11
    assert aggregate_frames(many_fake, "confident") == pytest.approx(0.9)
    few_fake = [0.9] * 11 + [0.1] * 21  # 11 is not more than 11
    assert aggregate_frames(few_fake, "confident") == pytest.approx(np.mean(few_fake))
    nearly_all_real = [0.05] * 30 + [0.6, 0.7]
    assert aggregate_frames(nearly_all_real, "confident") == pytest.approx(0.05)
    mixed = [0.3] * 16 + [0.7] * 16
    assert aggregate_frames(mixed, "confident") == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown aggregation rule 'median'"):
        aggregate_frames([0.5], "median")


def test_faces_combine_by_max_or_mean():
    probs = [0.1, 0.1, 0.9, 0.9]
    tracks = [0, 0, 1, 1]
    assert video_score(probs, tracks, faces_combine="max") == pytest.approx(0.9)
    assert video_score(probs, tracks, faces_combine="mean") == pytest.approx(0.5)
    assert video_score([], [], faces_combine="max") == 0.5


def test_compare_rules_table():
    oof = pd.DataFrame(
        {
            "label": [1, 0, 1, 0],
            "frame_probs": [[0.9, 0.8, 0.95], [0.1, 0.2, 0.3], [0.6, 0.7, 0.2], [0.4, 0.1, 0.1]],
            "tracks": [[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 0, 0]],
        }
    )
    table = compare_rules(oof)
    assert len(table) == 6 and set(table["rule"]) == {"mean", "confident", "weighted"}
    assert table["logloss"].is_monotonic_increasing
    best = table.iloc[0]
    scores = [
        video_score(p, t, best["rule"], best["faces_combine"])
        for p, t in zip(oof["frame_probs"], oof["tracks"], strict=False)
    ]
    assert best["logloss"] == pytest.approx(log_loss(oof["label"], scores))
