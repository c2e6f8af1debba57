"""Restoration methods. Each submodule registers its methods in :data:`bench.core.registry.METHODS`."""
from methods.base import MethodInfo, RestorationMethod, WeightsInfo

__all__ = ["RestorationMethod", "MethodInfo", "WeightsInfo"]
