"""AdaFace IR-50: strict loading of a checkpoint shaped like the official one, and the LQ-vs-output gate metric."""
from __future__ import annotations

import argparse

import pandas as pd
import pytest
import torch

from bench.config import RunConfig
from bench.engine.runner import Runner
from bench.metrics.adaface import AdaFaceLQIdentity
from bench.metrics.adaface_arch import AdaFaceIR50, load_adaface
from tests._helpers.learned_helpers import random_faces, random_state
from tests._helpers.runner_helpers import make_folder, register


def _official_like(path, seed=0, drop: str | None = None) -> dict:
    """A Lightning checkpoint as AdaFace's release has it: state_dict with 'model.' keys, the head, hparams."""
    state = random_state(AdaFaceIR50(), seed)
    sd = {f"model.{k}": v for k, v in state.items() if k != drop}
    sd["head.kernel"] = torch.randn(512, 7)  # the AdaFace margin head, dropped at inference
    ckpt = {"epoch": 25, "global_step": 1, "pytorch-lightning_version": "1.8.6", "state_dict": sd,
            "hyper_parameters": argparse.Namespace(arch="ir_50", head="adaface", m=0.4, h=0.333)}
    torch.save(ckpt, path)
    return state


def test_architecture_matches_the_official_ir50():
    """Facts of the official IR-50 independent of this code: 24 blocks, 43.6 M parameters, its tensor names."""
    net = AdaFaceIR50()
    sd = net.state_dict()
    assert len(net.body) == 3 + 4 + 14 + 3
    assert sum(p.numel() for p in net.parameters()) == 43_585_600  # "IR-50: 43.6M"
    assert sd["input_layer.0.weight"].shape == (64, 3, 3, 3) and sd["input_layer.2.weight"].shape == (64,)
    assert not any(k.startswith("body.0.shortcut_layer") for k in sd)  # 64 -> 64: a max-pool, no weights
    assert sd["body.3.shortcut_layer.0.weight"].shape == (128, 64, 1, 1)
    assert sd["body.23.res_layer.4.weight"].shape == (512, 512, 3, 3)
    assert sd["output_layer.3.weight"].shape == (512, 512 * 7 * 7)
    assert "output_layer.4.running_mean" in sd and "output_layer.4.weight" not in sd  # BatchNorm1d(affine=False)


def test_same_numbers_as_the_official_net_py():
    """The official IR_50 loaded these random weights strictly (same names) and gave these values."""
    import json

    from tests.conftest import FIXTURES

    ref = json.loads((FIXTURES / "adaface_ir50_reference.json").read_text())
    net = AdaFaceIR50()
    net.load_state_dict(random_state(AdaFaceIR50(), seed=0), strict=True)
    net.eval()
    assert len(net.state_dict()) == ref["num_tensors"]
    x = torch.linspace(-1, 1, 2 * 3 * 112 * 112).reshape(2, 3, 112, 112).sin()
    with torch.no_grad():
        emb, norm = net(x)
    assert torch.allclose(emb[:, :16], torch.tensor(ref["embedding_first16"]), atol=1e-5)
    assert torch.allclose(norm[:, 0], torch.tensor(ref["norm"]), rtol=1e-5)


def test_strict_load_of_a_manifest_shaped_checkpoint(tmp_path):
    path = tmp_path / "adaface_ir50_ms1mv2.ckpt"
    state = _official_like(path)
    net = load_adaface(path)
    ref = AdaFaceIR50()
    ref.load_state_dict(state, strict=True)
    ref.eval()
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        (a, na), (b, nb) = net(x), ref(x)
    assert torch.equal(a, b) and torch.equal(na, nb)
    assert torch.allclose(a.norm(dim=1), torch.ones(2), atol=1e-5)
    # one tensor missing: refused, naming it
    bad = tmp_path / "bad.ckpt"
    _official_like(bad, drop="body.5.res_layer.1.weight")
    with pytest.raises(ValueError, match=r"1 missing \(e\.g\. body\.5\.res_layer\.1\.weight\)"):
        load_adaface(bad)


@pytest.fixture(scope="module")
def gate_ckpt(tmp_path_factory):
    """One official-like checkpoint (seed 1) for the gate metric's tests: 43.6 M random parameters built once."""
    path = tmp_path_factory.mktemp("adaface") / "adaface.ckpt"
    _official_like(path, seed=1)
    return path


def test_gate_metric_cosine_of_lq_and_output(gate_ckpt):
    path = gate_ckpt
    m = AdaFaceLQIdentity(weights=str(path))
    lq = random_faces(3, 512, seed=2)
    same = m.update(lq, lq)
    assert same.tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    other = m.update(random_faces(3, 512, seed=3), lq)
    assert (other < 0.999).all()


def test_gate_metric_through_the_runner_gets_the_lq(tmp_path, gate_ckpt):
    path = gate_ckpt
    root = make_folder(tmp_path / "setAda", 2, size=512)
    ds = register(root, "adaface")
    cfg = RunConfig(datasets=[ds], methods=["lq", "classical"], metrics=[f"ids-adaface-lq:weights={path}"],
                    out=str(tmp_path / "run"), device="cpu", batch_size=2, workers=0, quiet=True, report=False)
    s = pd.read_csv(Runner(cfg).run().run_dir / "summary.csv").set_index("method")
    assert s.loc["lq", "value"] == pytest.approx(1.0, abs=1e-6)  # the output is the LQ itself
    assert s.loc["classical", "value"] < 1.0 and s.loc["lq", "n"] == 2
    # an option the instance's label does not express is appended to it
    assert s.loc["lq", "protocol"] == f"ntire-adaface-ir50-cos-lq-template5[weights={path}]"
