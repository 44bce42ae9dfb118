"""A sample that cannot be loaded is one user error, also when a DataLoader worker process loads it."""
from __future__ import annotations

import numpy as np
import pytest

from rdfa_s6.config import load_config
from rdfa_s6.data.dataset import Collate, SampleError, SampleFailure, TALDataset, load_batches
from rdfa_s6.data.prepare import prepare_data
from rdfa_s6.data.synth import SynthSpec, generate


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    """A tiny dataset whose second training video has a NaN in its feature file."""
    root = tmp_path_factory.mktemp("poisoned")
    generate(root, SynthSpec(train_videos=3, val_videos=0, test_videos=0, min_len=40, max_len=64, seed=5))
    cfg = load_config("demo", overrides=["data.val_split=null", "data.max_seq_len=64"])
    data = prepare_data(cfg.data, root, [cfg.data.train_split])
    records = data.annotations.split(cfg.data.train_split)
    path = root / "features" / f"{records[1].video_id}.npy"
    feats = np.load(path)
    feats[3, 1] = np.nan
    np.save(path, feats)
    return TALDataset(records, data.reader, cfg.data, training=False), records[1].video_id


@pytest.mark.parametrize("workers", [0, 1])
def test_a_bad_sample_raises_its_one_line_error_from_a_worker_too(poisoned, workers):
    dataset, bad = poisoned
    with pytest.raises(SampleError) as raised:
        dataset[1]
    direct = str(raised.value)
    assert bad in direct and "\n" not in direct
    collate = Collate(64, 1, training=False)
    seen = []
    with pytest.raises(SampleError) as raised:
        for batch in load_batches(dataset, collate, batch_size=1, num_workers=workers):
            seen.append(batch.meta[0].video_id)
    assert str(raised.value) == direct  # the worker's message, not PyTorch's traceback text
    assert "Traceback" not in str(raised.value) and seen == [dataset.records[0].video_id]


def test_collate_passes_a_failure_on_as_the_batch():
    failure = SampleFailure("video 'x': bad")
    assert Collate(64, 1, training=False)([failure]) is failure
