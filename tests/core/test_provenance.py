import dataclasses

import pandas as pd

from dfdc.core.config import DataConfig
from dfdc.core.provenance import describe_training_data, training_data

FOLDS = pd.DataFrame({"name": ["b.mp4", "a.mp4"], "label": ["FAKE", "REAL"], "fold": [0, 1]})


def test_sample_models_say_they_are_sample_models():
    record = training_data(DataConfig(), FOLDS)
    assert record["source"] == "sample" and record["videos"] == 2
    line = describe_training_data([record, record])
    assert "generated sample" in line and "do not detect real deepfakes" in line


def test_real_data_names_its_folders_and_digest_tracks_the_videos():
    data = dataclasses.replace(DataConfig(), source="ffpp", local_path="/data/ffpp")
    record = training_data(data, FOLDS)
    line = describe_training_data([record])
    assert "ffpp data at /data/ffpp" in line and "do not detect" not in line
    relabelled = FOLDS.assign(label=["REAL", "FAKE"])
    assert training_data(data, relabelled)["videos_digest"] != record["videos_digest"]
    # Row order does not matter: the same videos, the same digest.
    assert training_data(data, FOLDS[::-1])["videos_digest"] == record["videos_digest"]


def test_old_checkpoints_say_it_was_not_recorded():
    assert "not recorded" in describe_training_data([{}])
