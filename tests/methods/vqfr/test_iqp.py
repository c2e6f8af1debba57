"""``vqfr+iqp``: IQP's score embedding plugged into VQFR v2's encoder latent (the code predictor's input).

Zero-initialised it must give exactly ``vqfr``'s output; trained (here: a random table) it must move the
predicted codes and nothing else; and a run of both yields the conditioning-gain row.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.core.registry import METHODS, factory_defaults
from bench.engine.results import ZERO_EMBEDDING_NOTE, build_gains
from methods.quality_conditioning import vqfr_with_iqp
from tests._helpers.baselines_support import astronaut, to_batch
from tests.methods.vqfr._small import SmallVQFR


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    base = astronaut(64)
    return to_batch(base, np.roll(base, 17, axis=0))


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_untrained_plug_in_is_bit_equal_to_vqfr(faces, ratio):
    base = SmallVQFR(weights="random", fidelity_ratio=ratio)
    ref = base.restore(faces)
    cond = vqfr_with_iqp(base, quality=0.9)  # the hook goes on this very network
    assert cond.wrapper.latent_shape == (64, 2, 2) and cond.wrapper._latent_module is base.net.encoder
    assert torch.equal(cond.restore(faces), ref)
    info = cond.info()
    assert info.params == {"fidelity_ratio": ratio, "quality": 0.9} and info.standin
    assert [w.name for w in info.weights] == ["vqfr-v2", "iqp-embedding"]
    cond.quality = 0.2  # another bin of the (zero) table
    assert torch.equal(cond.restore(faces), ref)


def test_a_trained_table_shifts_the_latent_the_code_predictor_reads(faces):
    cond = vqfr_with_iqp(SmallVQFR(weights="random"), quality=0.9)
    table = torch.randn(cond.wrapper.score_embed.weight.shape, generator=torch.Generator().manual_seed(1)) * 3
    cond.wrapper.load_embedding({"score_embed.weight": table})
    net = cond.base_method.net
    x = faces * 2 - 1
    with torch.no_grad():  # by hand: codes predicted from encoder(x) + table[bin 9], texture decoder at ratio 0
        z = net.encoder(x) + table[9].view(1, 64, 2, 2)
        index = net.feat2index(z.flatten(2).transpose(1, 2)).argmax(-1)
        want = net.decoder.conv_out(net.decoder.features(net.quantizer.lookup(index, 2, 2))[1])
        plain = net.decoder.conv_out(net.decoder.features(net.codes(x))[1])
    got = cond.restore(faces) * 2 - 1
    assert torch.allclose(got, want.clamp(-1, 1), atol=1e-6)
    assert (got - plain.clamp(-1, 1)).abs().mean() > 0.01  # the condition reaches the output
    assert torch.equal(net(x), plain)  # outside the wrapper's call the base network is untouched


def test_registered_beside_vqfr_with_its_defaults():
    meta = METHODS.entry("vqfr+iqp").meta
    assert meta["base"] == "vqfr" and meta["takes_quality"] and meta["weights"] == ["vqfr-v2"]
    assert factory_defaults(METHODS.entry("vqfr+iqp").factory) == {
        "quality": 0.9, "embedding": None, "fidelity_ratio": 0.0}


def _unit(label: str, values: list[float]) -> SimpleNamespace:
    per_image = [{"image": f"i{k}", "status": "ok", "values": {"psnr": v}, "metric_errors": {}}
                 for k, v in enumerate(values)]
    return SimpleNamespace(dataset="d", label=label, method_name=label, config_hash="h",
                           metric_values={"psnr": float(np.mean(values))}, metric_n={"psnr": len(values)},
                           per_image=per_image)


def test_a_run_of_both_has_the_gain_row():
    methods = {"vqfr": {"standin": False, "weights": [{"name": "vqfr-v2", "standin": False}]},
               "vqfr+iqp": {"standin": True, "weights": [{"name": "vqfr-v2", "standin": False},
                                                         {"name": "iqp-embedding", "standin": True}]}}
    gains = build_gains([_unit("vqfr", [20.0, 22.0]), _unit("vqfr+iqp", [20.0, 22.0])], {"psnr": {}}, methods)
    row = gains.iloc[0]
    assert len(gains) == 1 and (row.base_method, row.cond_method) == ("vqfr", "vqfr+iqp")
    assert row.delta_mean == 0 and row.note == ZERO_EMBEDDING_NOTE and row.standin
    trained = build_gains([_unit("vqfr", [20.0, 22.0]), _unit("vqfr+iqp", [21.0, 22.5])], {"psnr": {}}, {})
    assert trained.iloc[0].delta_mean == pytest.approx(0.75) and trained.iloc[0].note == ""
