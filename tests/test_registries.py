"""Choices live beside their registry: an encoder and a scan backend registered from outside the package are
chosen from config overrides and train, with no edit to the config schema (issue 25, acceptance)."""
from __future__ import annotations

from functools import partial

import pytest
import torch
from _tiny_training import TINY_OVERRIDES, TINY_SPEC, _one_thread_and_restored_flags  # noqa: F401 (fixture)

from rdfa_s6.config import load_config
from rdfa_s6.config.schema import Config, choices_of
from rdfa_s6.data.synth import generate
from rdfa_s6.errors import ConfigError
from rdfa_s6.models.branch import MambaBlock, pyramid
from rdfa_s6.models.embedding import EmbeddingModule
from rdfa_s6.models.encoders import ENCODERS, Encoder, register_encoder
from rdfa_s6.ssm import BACKENDS, register_scan_backend, selective_scan_reference
from rdfa_s6.ssm.bis6 import make_bis6
from rdfa_s6.train.loop import Trainer, TrainOptions

CALLS = {"scan": 0, "encoder": 0}


def probe_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """A scan backend of the test: the reference recurrence, counting its calls."""
    CALLS["scan"] += 1
    return selective_scan_reference(u, delta, A, B, C, D, z, delta_bias, delta_softplus=delta_softplus)


@pytest.fixture
def registered():
    """``probe_encoder`` and ``probe_scan``, registered through the public functions, removed afterwards."""

    @register_encoder("probe_encoder")
    class ProbeEncoder(Encoder):
        """Embedding, then ``branch.levels`` single-kernel Bi-S6 blocks that each halve the length."""

        def __init__(self, embedding, blocks):
            super().__init__()
            self.embedding, self.blocks = embedding, torch.nn.ModuleList(blocks)
            self.num_levels = len(blocks) + 1

        @classmethod
        def from_config(cls, model, input_dim, chan_pool_len):
            mixer = partial(make_bis6, d_state=4, scan_backend=model.scan_backend)
            return cls(EmbeddingModule(input_dim, model.embed_dim, 1, 3),
                       [MambaBlock(model.embed_dim, 2, mixer, 0.0, 1.0, "maxpool") for _ in range(model.branch.levels)])

        def forward(self, x, mask):
            CALLS["encoder"] += 1
            x, mask = self.embedding(x, mask)
            return pyramid(self.blocks, x, mask)

    register_scan_backend("probe_scan", probe_scan)
    try:
        yield ProbeEncoder
    finally:
        ENCODERS.pop("probe_encoder", None)
        BACKENDS.pop("probe_scan", None)


def _field(section, name):
    return next(f for f in __import__("dataclasses").fields(section) if f.name == name)


def test_the_schema_reads_the_registries(registered):
    from rdfa_s6.config.schema import MixerConfig, ModelConfig

    assert "probe_encoder" in choices_of(_field(ModelConfig, "encoder"))
    assert "probe_scan" in choices_of(_field(ModelConfig, "scan_backend"))
    assert choices_of(_field(MixerConfig, "bc_source")) == ("first", "per_kernel")
    cfg = load_config("demo", overrides=["model.encoder=probe_encoder", "model.scan_backend=probe_scan"])
    assert isinstance(cfg, Config) and cfg.model.encoder == "probe_encoder"


def test_an_unregistered_name_is_still_refused():
    with pytest.raises(ConfigError, match=r"'model\.encoder': expected one of rdfa_s6, actionformer, actionmamba"):
        load_config("demo", overrides=["model.encoder=probe_encoder"])
    with pytest.raises(ConfigError, match=r"'model\.scan_backend': expected one of reference, native"):
        load_config("demo", overrides=["model.scan_backend=probe_scan"])


def test_an_outside_encoder_and_scan_backend_train_from_config_overrides(registered, tmp_path, monkeypatch):
    monkeypatch.delenv("RDFA_S6_SCAN", raising=False)
    generate(tmp_path / "data", TINY_SPEC)
    CALLS.update(scan=0, encoder=0)
    overrides = TINY_OVERRIDES + ["train.epochs=1", "train.warmup_epochs=0", "model.embed_dim=8",
                                  "model.encoder=probe_encoder", "model.scan_backend=probe_scan"]
    trainer = Trainer(load_config("demo", overrides=overrides),
                      TrainOptions(out_dir=tmp_path / "run", data_root=tmp_path / "data", progress=False))
    assert type(trainer.model.backbone).__name__ == "ProbeEncoder"
    trainer.run()  # one epoch of two steps
    assert (tmp_path / "run" / "final").is_dir()
    assert CALLS["encoder"] >= 1 and CALLS["scan"] >= 1


def test_the_config_package_and_the_precision_choices_import_without_torch():
    import subprocess
    import sys

    code = ("import sys, rdfa_s6.config, rdfa_s6.precision, rdfa_s6.cpuinfo, rdfa_s6.data.paths; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
