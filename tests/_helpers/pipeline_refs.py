"""The official code of the whole-photo pipeline's auxiliary networks, imported from PyPI for parity tests.

facexlib 0.3.0 (ParseNet, BiSeNet, FaceRestoreHelper, RetinaFace), CodeFormer's facelib helper
(codeformer-pip 0.0.4), basicsr 1.4.2 (RRDBNet) and realesrgan
0.3.0 (RealESRGANer) are downloaded with ``pip download --no-deps`` and one module each is imported
with stubs (tests/_helpers/official_refs.py): none of them is installed, so facexlib's desktop
OpenCV never displaces the headless one, and nothing of theirs runs at bfrbench's run time.
"""
from __future__ import annotations

import types
from functools import cache

import torchvision.transforms.functional  # noqa: F401 - see below
from torch import nn

# load_official_module drops every module an official import added to sys.modules; torchvision (which
# facexlib's helper and basicsr's arch_util import) must be imported before, or a second import of it
# re-registers torch's operator libraries and fails.
from tests._helpers.official_refs import basicsr_stubs, load_official_module

FACEXLIB = "facexlib==0.3.0"
CODEFORMER_PIP = "codeformer-pip==0.0.4"
BASICSR = "basicsr==1.4.2"
REALESRGAN = "realesrgan==0.3.0"


@cache
def facexlib_parsenet() -> types.ModuleType:
    return load_official_module(FACEXLIB, "facexlib/parsing/parsenet.py")


@cache
def facexlib_bisenet() -> types.ModuleType:
    return load_official_module(FACEXLIB, "facexlib/parsing/bisenet.py")


@cache
def facexlib_restore_helper() -> types.ModuleType:
    """face_restoration_helper.py with the detector and parser factories stubbed (nets are passed in)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the test passes its own networks")

    stubs = {"facexlib.detection": {"init_detection_model": refuse}, "facexlib.parsing": {"init_parsing_model": refuse}}
    return load_official_module(FACEXLIB, "facexlib/utils/face_restoration_helper.py", stubs)


@cache
def facexlib_retinaface() -> types.ModuleType:
    """retinaface.py (RetinaFace and its detect_faces); torchvision imported first (it imports it lazily)."""
    import torchvision.models  # noqa: F401
    import torchvision.ops  # noqa: F401

    return load_official_module(FACEXLIB, "facexlib/detection/retinaface.py")


@cache
def codeformer_restore_helper() -> types.ModuleType:
    """CodeFormer's own facelib face_restoration_helper.py (codeformer-pip 0.0.4), its loaders stubbed."""
    import torch

    stubs = {"codeformer.basicsr": {}, "codeformer.basicsr.utils": {},
             "codeformer.basicsr.utils.download_util": {"load_file_from_url": None},
             "codeformer.basicsr.utils.misc": {"get_device": lambda: torch.device("cpu")},
             "codeformer.facelib.detection": {"init_detection_model": lambda *a, **k: None},
             "codeformer.facelib.parsing": {"init_parsing_model": lambda *a, **k: None}}
    return load_official_module(CODEFORMER_PIP, "codeformer/facelib/utils/face_restoration_helper.py", stubs)


@cache
def basicsr_rrdbnet() -> types.ModuleType:
    """rrdbnet_arch.py with its real arch_util; the compiled deformable-conv ops stubbed (unused by RRDBNet)."""
    stubs: dict = basicsr_stubs("basicsr")
    stubs["basicsr.ops"] = {}
    stubs["basicsr.ops.dcn"] = {"ModulatedDeformConvPack": nn.Module, "modulated_deform_conv": None}
    return load_official_module(BASICSR, "basicsr/archs/rrdbnet_arch.py", stubs)


@cache
def realesrgan_utils() -> types.ModuleType:
    """realesrgan/utils.py (RealESRGANer); the URL download helper stubbed (the test passes a file)."""
    return load_official_module(REALESRGAN, "realesrgan/utils.py",
                                {"basicsr.utils.download_util": {"load_file_from_url": None}})


@cache
def facexlib_misc() -> types.ModuleType:
    """facexlib/utils/misc.py (``img2tensor``: how the helper turns a BGR face into the parser's input)."""
    return load_official_module(FACEXLIB, "facexlib/utils/misc.py")
