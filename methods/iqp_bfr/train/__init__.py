"""Training of the IQP method: stage 1 (dual-codebook VQGAN), stage 2 (quality-conditioned code
lookup), stage 3 (CFT + discrete quality optimisation) and plug-and-play fine-tuning.

Entry point: :func:`methods.iqp_bfr.train.trainer.train`, on the command line::

    bfrbench score-dataset FACES --iqa niqe brisque --out scores.csv      # the quality prior
    bfrbench train methods/iqp_bfr/configs/stage1.yaml --out runs/iqp/stage1
    bfrbench train methods/iqp_bfr/configs/stage2.yaml --out runs/iqp/stage2
    bfrbench train methods/iqp_bfr/configs/stage3.yaml --out runs/iqp/stage3
    bfrbench train CONFIG --out DIR --resume                                # after an interruption

Modules: ``config`` (defaults, YAML, ``--set``), ``data`` (faces + scores, on-the-fly degradation),
``losses``, ``discriminator``, ``ema``, ``reward`` (differentiable NR-IQA rewards), ``stages``
(stage 1 and 2), ``stage3``, ``finetune``, ``monitor`` (CSV / TensorBoard logs, codebook usage),
``evaluate`` (what the quality condition does to outputs), ``trainer`` (the loop, checkpoints,
resume). Configs: ``methods/iqp_bfr/configs/`` (full-size recipes and ``tiny_*`` CPU versions).
"""
