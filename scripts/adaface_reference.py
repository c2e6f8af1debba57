"""Reference values for tests/bench/metrics/test_adaface.py from the official AdaFace ``net.py``.

Usage (the official file is not part of this project)::

    git clone https://github.com/mk-minchul/AdaFace /tmp/AdaFace
    PYTHONPATH=. python scripts/adaface_reference.py /tmp/AdaFace/net.py > tests/fixtures/adaface_ir50_reference.json

It builds the official ``IR_50``, loads ``tests._helpers.learned_helpers.random_state(AdaFaceIR50(), seed=0)``
with ``strict=True`` (so every tensor name and shape of ours exists in the official model and
vice versa), runs a fixed input and prints the embedding's first values and the norms.
"""
from __future__ import annotations

import importlib.util
import json
import sys

import torch


def main(net_py: str) -> None:
    from bench.metrics.adaface_arch import AdaFaceIR50
    from tests._helpers.learned_helpers import random_state

    spec = importlib.util.spec_from_file_location("adaface_net", net_py)
    net = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(net)
    official = net.build_model("ir_50")
    state = random_state(AdaFaceIR50(), seed=0)
    official.load_state_dict(state, strict=True)
    official.eval()
    x = torch.linspace(-1, 1, 2 * 3 * 112 * 112).reshape(2, 3, 112, 112).sin()
    with torch.no_grad():
        emb, norm = official(x)
    print(json.dumps({
        "source": "mk-minchul/AdaFace net.py build_model('ir_50'), commit c60eaa7; scripts/adaface_reference.py",
        "num_tensors": len(official.state_dict()),
        "embedding_first16": emb[:, :16].tolist(),
        "norm": norm[:, 0].tolist(),
    }, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
