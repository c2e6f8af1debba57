"""CodeFormer-family architecture shared by the ``codeformer`` baseline and the IQP method.

Public API (used by methods/iqp_bfr/train):
  ``NetConfig``, ``get_config(name)`` (``codeformer``, ``iqpir``, ``vqgan_stage1``, ``tiny`` ...),
  ``CodeLookupNet`` (stage 2/3 code-lookup network), ``VQAutoEncoder`` (stage 1),
  ``build_network(config)``.
"""
from methods.codeformer_arch.config import NetConfig, config_from_dict, get_config
from methods.codeformer_arch.network import CodeLookupNet, VQAutoEncoder, build_network

__all__ = ["NetConfig", "config_from_dict", "get_config", "CodeLookupNet", "VQAutoEncoder", "build_network"]
