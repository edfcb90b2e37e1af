"""The headline metrics (dfdc.core.headline): what each stage's DVC metric file holds."""

from __future__ import annotations

import json
import math

from dfdc.core.headline import (
    cv_headline,
    eval_headline,
    headline_path,
    robustness_headline,
    submission_headline,
    write_headline,
)


def test_a_headline_lies_beside_its_detail_and_holds_few_unique_keys(tmp_path):
    detail = tmp_path / "metrics" / "cv.json"
    cv = {"logloss": 0.2, "auc": 0.9, "accuracy": 0.8, "n_videos": 24, "per_part": {"a": {}}}
    path = write_headline(cv_headline(cv), detail)
    assert path == headline_path(detail) == tmp_path / "metrics" / "headline" / "cv.json"
    assert json.loads(path.read_text()) == {"logloss": 0.2, "auc": 0.9}
    keys = [
        *cv_headline(cv),
        *submission_headline({"available": True, "logloss": 0.3, "auc": 0.8}),
        *eval_headline({"logloss": 0.5, "auc": 0.7}),
        *robustness_headline({"distortions": {}}),
    ]
    assert len(keys) == len(set(keys)) == 6  # dvc exp show prefixes a shared key with its file


def test_a_missing_set_or_a_one_class_auc_is_null():
    assert submission_headline({"available": False}) == {"test_logloss": None, "test_auc": None}
    assert eval_headline(None) == {"eval_logloss": None}
    assert cv_headline({"logloss": 0.1, "auc": math.nan}) == {"logloss": 0.1, "auc": None}


def test_robustness_is_the_mean_over_the_scored_levels():
    report = {
        "clean": {"logloss": 0.01, "n": 4},
        "distortions": {
            "blur": {"levels": {"4": {"logloss": 0.5, "n": 4}, "8": {"n": 0}}},
            "crf": {"levels": {"38": {"logloss": 1.5, "n": 4}}},
        },
    }
    assert robustness_headline(report) == {"distorted_logloss": 1.0}
    assert robustness_headline({"distortions": {}}) == {"distorted_logloss": None}
