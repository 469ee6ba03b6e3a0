"""Explain what a CSBrain classifier looks at: integrated gradients, Grad-CAM, occlusion and
attention maps over channels, regions and patches (``csbrain explain``)."""

from csbrain.explain.attention import read_attention
from csbrain.explain.core import METHODS, explain_windows, summarise
from csbrain.explain.run import explain

__all__ = ["METHODS", "explain", "explain_windows", "read_attention", "summarise"]
