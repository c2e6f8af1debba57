"""LPIPS: parity with the lpips package (same random backbone, the package's real linear layers)."""
from __future__ import annotations

import io
import warnings

import pytest
import torch

from bench.core.registry import METRICS
from bench.metrics import MetricUnavailable
from bench.metrics.lpips_metric import LPIPS, LPIPSAlex, LPIPSNet, linear_weights_path
from tests._helpers.learned_helpers import random_faces

_TV_BUILDERS = {"vgg": "vgg16", "alex": "alexnet"}


@pytest.fixture(scope="module", params=["vgg", "alex"])
def backbone(request, tmp_path_factory):
    """A random torchvision-format backbone checkpoint (``features.N.*`` plus a dummy classifier key)."""
    net = request.param
    gen = torch.Generator().manual_seed(11)
    feats = LPIPSNet(net, init=False).features  # shapes only
    state = {}
    for k, v in feats.state_dict().items():
        fan_in = max(1, v[0].numel())
        state[f"features.{k}"] = (torch.randn(v.shape, generator=gen) * (2.0 / fan_in) ** 0.5) if v.ndim > 1 else (
            0.01 * torch.randn(v.shape, generator=gen))
    state["classifier.0.bias"] = torch.zeros(4)  # torchvision checkpoints carry the classifier: ignored
    path = tmp_path_factory.mktemp("lpips") / f"{net}_random.pth"
    torch.save(state, path)
    return net, path, state


def _package_lpips(net: str, state: dict[str, torch.Tensor]):
    """lpips.LPIPS with the package's v0.1 linear layers and our random backbone injected."""
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    own = model.net.state_dict()  # slice{k}.{idx}.weight
    mapped = {}
    for k in own:
        _, idx, kind = k.split(".")
        mapped[k] = state[f"features.{idx}.{kind}"]
    model.net.load_state_dict(mapped, strict=True)
    return model.eval()


def test_lpips_matches_package(backbone):
    net, path, state = backbone
    cls = LPIPS if net == "vgg" else LPIPSAlex
    metric = cls(weights=str(path))
    ref = _package_lpips(net, state)
    pred, gt = random_faces(3, 64, seed=1), random_faces(3, 64, seed=2)
    ours = metric.update(pred, gt)
    with torch.no_grad():
        theirs = ref(pred * 2 - 1, gt * 2 - 1).view(-1).double()  # the papers' [-1, 1] inputs
    assert ours.shape == (3,)
    assert ours.min() > 1e-3  # not degenerate
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert metric.compute() == pytest.approx(float(theirs.mean()), abs=1e-6)
    # identical images: zero distance
    assert metric.update(gt, gt).abs().max() < 1e-6


def test_lpips_labels_and_linear_weights(backbone):
    net, path, _ = backbone
    metric = (LPIPS if net == "vgg" else LPIPSAlex)(weights=str(path))
    assert metric.protocol == f"lpips-0.1-{net}" and metric.standard and not metric.higher_better
    import lpips

    pkg = torch.load(linear_weights_path(net), map_location="cpu", weights_only=True)
    torch.testing.assert_close(metric.model.model.lins[0].model[1].weight, pkg["lin0.model.1.weight"])
    assert isinstance(metric.model.model, lpips.LPIPS)  # the package's network, not a copy of it
    assert str(linear_weights_path(net)).startswith(lpips.__path__[0])


def test_lpips_merge_states(backbone):
    net, path, _ = backbone
    cls = LPIPS if net == "vgg" else LPIPSAlex
    pred, gt = random_faces(4, 48, seed=3), random_faces(4, 48, seed=4)
    whole = cls(weights=str(path))
    whole.update(pred, gt)
    merged = cls(weights=str(path))
    for sl in (slice(0, 1), slice(1, 4)):
        part = cls(weights=str(path))
        part.update(pred[sl], gt[sl])
        buf = io.BytesIO()
        torch.save(part.state(), buf)
        merged.merge_state(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    assert merged.compute() == pytest.approx(whole.compute(), rel=1e-6)


def test_lpips_missing_backbone_message(monkeypatch, tmp_path):
    monkeypatch.setenv("BFRBENCH_HOME", str(tmp_path))  # an empty cache, whatever the session fetched
    monkeypatch.setenv("BFRBENCH_AUTO_FETCH", "0")  # PyPI assets are otherwise fetched on first use
    for name, file, url in (
        ("lpips", "vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
        ("lpips-alex", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    ):
        with pytest.raises(MetricUnavailable) as e:
            METRICS.create(name)
        msg = str(e.value)
        assert file in msg and url in msg and "bfrbench fetch" in msg
        assert METRICS.entry(name).available()[0] is False


def test_lpips_rejects_wrong_backbone(tmp_path, backbone):
    net, _, _ = backbone
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="torchvision"):
        (LPIPS if net == "vgg" else LPIPSAlex)(weights=str(tmp_path / "bad.pth"))
