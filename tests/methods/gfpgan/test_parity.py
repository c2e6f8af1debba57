"""``gfpgan`` against the official GFPGANv1Clean (``gfpgan==1.3.8`` wheel, downloaded by the test).

Both networks get the same deterministic random weights in the release container; the official side
runs GFPGANer's preprocessing on the BGR uint8 face (``return_rgb=False, weight=0.5``), ours runs
``method.restore`` on the RGB batch the runner would pass. Default: a 64x64 quarter-width network
(every code path of the 512 model); ``slow``: the release configuration at 512.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import bench
from methods.gfpgan.arch import GFPGANv1Clean
from methods.gfpgan.method import GFPGANMethod, standin_state_dict
from tests._helpers.baselines_support import (
    assert_informative,
    assert_matches,
    astronaut,
    manifest_shapes,
    official_forward,
    official_gfpgan_module,
    to_batch,
    to_uint8,
    write_checkpoint,
)

pytestmark = pytest.mark.network

RELEASE = dict(num_style_feat=512, channel_multiplier=2, decoder_load_path=None, fix_decoder=False, num_mlp=8,
               input_is_latent=True, different_w=True, sft_half=True)  # as GFPGANer builds arch='clean'


@pytest.fixture(scope="module")
def official():
    return official_gfpgan_module()


class SmallGFPGAN(GFPGANMethod):
    input_size = output_size = 64

    def build_net(self) -> GFPGANv1Clean:
        return GFPGANv1Clean(out_size=64, narrow=0.25)


@pytest.fixture(scope="module")
def small_pair(official, tmp_path_factory):
    """(official net, checkpoint path) for the 64x64 quarter-width configuration."""
    net = official.GFPGANv1Clean(out_size=64, narrow=0.25, **RELEASE).eval()
    state = standin_state_dict({k: tuple(v.shape) for k, v in net.state_dict().items()}, seed=0)
    path = write_checkpoint(tmp_path_factory.mktemp("gfpgan") / "small.pth", state, "params_ema")
    net.load_state_dict(torch.load(path, weights_only=True)["params_ema"], strict=True)  # as GFPGANer loads
    return net, path


def _official(net, rgb, seed=None, **kw):
    """GFPGANer.enhance's network call; ``randomize_noise=True`` draws from the global RNG after the seed."""
    if seed is not None:
        torch.manual_seed(seed)
    return official_forward(lambda x: net(x, return_rgb=False, weight=0.5, **kw)[0], rgb)


def test_official_arch_has_the_release_manifest(official):
    net = official.GFPGANv1Clean(out_size=512, narrow=1, **RELEASE)
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == list(manifest_shapes("gfpgan_v1.4_clean").items())


@pytest.mark.parametrize("noise,seed", [("seeded", 0), ("seeded", 5), ("stored", None)])
def test_matches_official_small(small_pair, noise, seed):
    net, path = small_pair
    faces = [astronaut(64), np.ascontiguousarray(astronaut(64)[:, ::-1])]
    kw = {"randomize_noise": noise == "seeded"}
    refs = [_official(net, f, seed, **kw) for f in faces]
    ours = to_uint8(SmallGFPGAN(weights=str(path), noise=noise, seed=seed or 0).restore(to_batch(*faces)))
    for got, ref in zip(ours, refs):
        assert_informative(ref)
        assert_matches(got, ref, tol=1, frac=0.999)
    if noise == "seeded":  # the seed matters, so the test above really checks the noise draw
        other = _official(net, faces[0], seed + 1, **kw)
        assert np.abs(other.astype(int) - refs[0].astype(int)).mean() > 1


def test_official_weight_argument_has_no_effect(small_pair):
    """GFPGANer passes ``weight`` to GFPGANv1Clean.forward, whose **kwargs drop it."""
    net, _ = small_pair
    face = astronaut(64)
    a = _official(net, face, 0, randomize_noise=True)
    b = official_forward(lambda x: (torch.manual_seed(0), net(x, return_rgb=False, weight=1.0)[0])[1], face)
    assert np.array_equal(a, b)


@pytest.mark.slow
def test_matches_official_release_configuration_512(official, tmp_path):
    state = standin_state_dict(manifest_shapes("gfpgan_v1.4_clean"), seed=0)
    path = write_checkpoint(tmp_path / "GFPGANv1.4.pth", state, "params_ema")
    net = official.GFPGANv1Clean(out_size=512, narrow=1, **RELEASE).eval()
    net.load_state_dict(torch.load(path, weights_only=True)["params_ema"], strict=True)
    face = astronaut(512)
    ref = _official(net, face, 0, randomize_noise=True)
    del net
    ours = to_uint8(bench.create_method("gfpgan", weights=str(path)).restore(to_batch(face)))[0]
    assert_informative(ref)
    assert_matches(ours, ref, tol=1, frac=0.99)
