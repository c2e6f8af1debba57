"""The checkpoints and data assets bfrbench knows, with where to get them and how to check them.

Sizes and SHA-256 digests are filled in only where at least two independent sources agree
(third-party manifests, Git LFS pointers, the hash prefix torch hub file names carry); the
upstream projects publish none. Everything else is pinned on first download (``pins.json``).
Modules that use an asset may register the same spec themselves (``register_weights`` merges
identical and compatible specs); ``ALIASES`` maps the names in the docs to those modules' names.
"""
from __future__ import annotations

from bench.weights import ALIASES, WeightSpec, register_weights

CODEFORMER = "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0"
GFPGAN = "https://github.com/TencentARC/GFPGAN/releases/download"
FACEXLIB = "https://github.com/xinntao/facexlib/releases/download"
RESTOREFORMER = "https://github.com/wzhouxiff/RestoreFormerPlusPlus/releases/download/v1.0.0"
TORCHVISION = "https://download.pytorch.org/models"

_SLAB = "NTU S-Lab License 1.0 (non-commercial)"

BUILTIN: tuple[WeightSpec, ...] = (
    # ---- restoration methods
    WeightSpec(
        name="codeformer",
        filename="codeformer.pth",
        url=f"{CODEFORMER}/codeformer.pth",
        size=376_637_898,
        sha256="1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
        license=_SLAB,
        description="CodeFormer v0.1.0 (NeurIPS 2022), params_ema; 359 MiB",
    ),
    WeightSpec(
        name="vqgan-code1024",
        filename="vqgan_code1024.pth",
        url=f"{CODEFORMER}/vqgan_code1024.pth",
        license=_SLAB,
        description="CodeFormer stage-1 VQGAN (1024 x 256 codebook), params_ema",
    ),
    WeightSpec(
        name="iqpir",
        filename="iqpir.pth",
        license="unstated by the release (CodeFormer-derived code: NTU S-Lab License 1.0)",
        description=(
            "IQPIR (CVPR 2026) CodeFormer with dual codebook and additive score embedding, params_ema; "
            "its README gives no download location yet: place the released checkpoint here by hand"
        ),
        extra={"manual_url": "https://github.com/fengyang1399-pixel/IQPIR"},
    ),
    WeightSpec(
        name="gfpgan-v1.4",
        filename="GFPGANv1.4.pth",
        url=f"{GFPGAN}/v1.3.0/GFPGANv1.4.pth",
        size=348_632_874,
        sha256="e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        license="Apache-2.0 (TencentARC/GFPGAN)",
        description="GFPGAN v1.4 (GFPGANv1Clean), params_ema",
    ),
    WeightSpec(
        name="gfpgan-v1.3",
        filename="GFPGANv1.3.pth",
        url=f"{GFPGAN}/v1.3.0/GFPGANv1.3.pth",
        sha256="c953a88f2727c85c3d9ae72e2bd4846bbaf59fe6972ad94130e23e7017524a70",
        license="Apache-2.0 (TencentARC/GFPGAN)",
        description="GFPGAN v1.3 (GFPGANv1Clean), params_ema",
    ),
    WeightSpec(
        name="restoreformer",
        filename="RestoreFormer.ckpt",
        url=f"{RESTOREFORMER}/RestoreFormer.ckpt",
        size=290_861_237,
        sha256="4a193c716bc27cc0533d1b9307100c671e7b584ffa3ba6648182fea4b3228dff",
        license="Apache-2.0 (wzhouxiff/RestoreFormerPlusPlus)",
        description="RestoreFormer (CVPR 2022), Lightning checkpoint, state_dict with vqvae. prefix",
    ),
    WeightSpec(
        name="restoreformer++",
        filename="RestoreFormer++.ckpt",
        url=f"{RESTOREFORMER}/RestoreFormer++.ckpt",
        size=294_028_815,
        license="Apache-2.0 (wzhouxiff/RestoreFormerPlusPlus)",
        description="RestoreFormer++ (TPAMI 2023), Lightning checkpoint, state_dict with vqvae. prefix",
    ),
    # ---- metrics
    WeightSpec(
        name="pt_inception_fid",
        filename="pt_inception-2015-12-05-6726825d.pth",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        size=95_628_359,
        sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
        license="Apache-2.0 (pytorch-fid)",
        description="FID InceptionV3 (TF inception-2015-12-05 ported by pytorch-fid); pool3 features for FID",
        extra={"hash_prefix": "6726825d"},
    ),
    WeightSpec(
        name="vgg16_imagenet_torchvision",
        filename="vgg16-397923af.pth",
        url=f"{TORCHVISION}/vgg16-397923af.pth",
        size=553_433_881,
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
        license="BSD-3-Clause (torchvision)",
        description="torchvision VGG16 ImageNet weights: the LPIPS-VGG backbone (only features.* are used)",
        extra={"hash_prefix": "397923af"},
    ),
    WeightSpec(
        name="alexnet_imagenet_torchvision",
        filename="alexnet-owt-7be5be79.pth",
        url=f"{TORCHVISION}/alexnet-owt-7be5be79.pth",
        size=244_408_911,
        sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
        license="BSD-3-Clause (torchvision)",
        description="torchvision AlexNet ImageNet weights: the LPIPS-Alex backbone (only features.* are used)",
        extra={"hash_prefix": "7be5be79"},
    ),
    # ---- face detection and parsing
    WeightSpec(
        name="retinaface-resnet50",
        filename="detection_Resnet50_Final.pth",
        url=f"{FACEXLIB}/v0.1.0/detection_Resnet50_Final.pth",
        size=109_497_761,
        sha256="6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
        license="MIT (facexlib)",
        description="RetinaFace ResNet-50 face detector with 5 landmarks (facexlib retinaface_resnet50)",
    ),
    WeightSpec(
        name="retinaface-mobilenet0.25",
        filename="detection_mobilenet0.25_Final.pth",
        url=f"{FACEXLIB}/v0.1.0/detection_mobilenet0.25_Final.pth",
        license="MIT (facexlib)",
        description="RetinaFace MobileNet-0.25 face detector with 5 landmarks (facexlib retinaface_mobile0.25)",
    ),
    WeightSpec(
        name="parsing-parsenet",
        filename="parsing_parsenet.pth",
        url=f"{FACEXLIB}/v0.2.2/parsing_parsenet.pth",
        size=85_331_193,
        sha256="3d558d8d0e42c20224f13cf5a29c79eba2d59913419f945545d8cf7b72920de2",
        license="MIT (facexlib)",
        description="ParseNet face parsing, 19 classes (facexlib parsenet; CodeFormer / GFPGAN paste-back)",
    ),
    WeightSpec(
        name="parsing-bisenet",
        filename="parsing_bisenet.pth",
        url=f"{FACEXLIB}/v0.2.0/parsing_bisenet.pth",
        license="MIT (facexlib)",
        description="BiSeNet face parsing, 19 classes (facexlib bisenet)",
    ),
)

#: names used in the docs and task descriptions -> the registered name of the same asset
BUILTIN_ALIASES: dict[str, str] = {
    "fid-inception": "pt_inception_fid",
    "fid-ffhq512-stats": "fid_stats_ffhq512",  # registered by bench.metrics.fid (Google Drive only)
    "lpips-vgg16": "vgg16_imagenet_torchvision",
    "lpips-alexnet": "alexnet_imagenet_torchvision",
    "arcface-resnet18": "arcface_resnet18",  # registered by bench.metrics.identity
    "insightface-buffalo-l": "insightface_buffalo_l",  # registered by bench.metrics.identity
    "awing-fan": "awing_fan_wflw",  # registered by bench.metrics.landmarks
}

for _spec in BUILTIN:
    register_weights(_spec)
ALIASES.update(BUILTIN_ALIASES)
