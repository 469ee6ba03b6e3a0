"""Model configuration: one validated dataclass and named presets (variants are data).

A preset is a row of :data:`CONFIG_PRESETS`; ``CSBrainConfig.from_preset("tiny")`` returns it,
``CSBrainConfig.from_dict`` rebuilds a saved one. No torch import here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from csbrain import configio, units
from csbrain._checks import CSBrainTypeError, check_float, check_int, check_option

#: Temporal-convolution modes (spec §2.1): ``released`` reproduces the released code's memory
#: layout (needed for released checkpoints); ``paper`` is a true convolution over patches.
TEMPORAL_MODES = ("released", "paper")

# Fixed geometry of the patch-embedding convolution stack (inherited from CBraMod).
EMBED_KERNEL = 49
EMBED_STRIDE = 25
EMBED_GROUPS = 5


@dataclass(frozen=True)
class CSBrainConfig:
    """Architecture of a CSBrain backbone.

    Parameters
    ----------
    patch_size : int
        Samples per patch (the input contract's 200 = one second at 200 Hz).
    d_model : int
        Token width. Must split into ``EMBED_GROUPS``-divisible conv channels times the number
        of strided conv outputs per patch (``(patch_size - 1) // 25 + 1``).
    n_layers : int
        Number of encoder layers (released: 12).
    n_heads : int
        Attention heads; must divide ``d_model``.
    dim_feedforward : int
        Hidden width of the feed-forward block (released: 800).
    kernel_sizes : tuple of int
        Odd kernel sizes of the multi-scale temporal and region convolutions (released: 1, 3, 5).
        Output widths halve per scale (100/50/50 for d_model 200).
    window_size : int
        Inter-window attention window (released: 5); the effective window is ``min(P, w)``.
    dropout : float
        Dropout of attention weights, residual branches, feed-forward and spectral embedding.
    temporal_mode : {"released", "paper"}
        See :data:`TEMPORAL_MODES`.
    pos_kernel : tuple of int
        Kernel (channels, patches) of the depthwise positional convolution (released: 19, 7).
    norm_eps : float
        LayerNorm epsilon.
    """

    patch_size: int = units.PATCH_SIZE
    d_model: int = 200
    n_layers: int = 12
    n_heads: int = 8
    dim_feedforward: int = 800
    kernel_sizes: tuple[int, ...] = (1, 3, 5)
    window_size: int = 5
    dropout: float = 0.1
    temporal_mode: str = "released"
    pos_kernel: tuple[int, int] = (19, 7)
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        check_int("patch_size", self.patch_size, min_value=EMBED_KERNEL)
        check_int("d_model", self.d_model, min_value=1)
        check_int("n_layers", self.n_layers, min_value=1)
        check_int("n_heads", self.n_heads, min_value=1)
        check_int("dim_feedforward", self.dim_feedforward, min_value=1)
        check_int("window_size", self.window_size, min_value=1)
        check_float("dropout", self.dropout, min_value=0.0, max_value=1.0, inclusive=True)
        check_float("norm_eps", self.norm_eps, min_value=0.0, inclusive=False)
        check_option("temporal_mode", self.temporal_mode, TEMPORAL_MODES)
        for name in ("kernel_sizes", "pos_kernel"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
                raise CSBrainTypeError(f"{name}={value!r} must be a sequence of integers")
            object.__setattr__(self, name, tuple(check_int(f"{name}[{i}]", k)
                                                 for i, k in enumerate(value)))
        if not self.kernel_sizes or any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise ValueError(f"kernel_sizes={self.kernel_sizes} must be odd positive integers")
        if list(self.kernel_sizes) != sorted(set(self.kernel_sizes)):
            raise ValueError(f"kernel_sizes={self.kernel_sizes} must be strictly increasing")
        if len(self.pos_kernel) != 2 or any(k < 1 or k % 2 == 0 for k in self.pos_kernel):
            raise ValueError(f"pos_kernel={self.pos_kernel} must be two odd positive integers")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")
        n_steps = self.embed_steps
        if self.d_model % n_steps or (self.d_model // n_steps) % EMBED_GROUPS:
            raise ValueError(
                f"d_model={self.d_model} must be a multiple of {EMBED_GROUPS * n_steps} for "
                f"patch_size={self.patch_size} ({n_steps} conv steps per patch x conv channels "
                f"divisible by {EMBED_GROUPS})")
        if min(self.scale_dims) < 1:
            raise ValueError(f"d_model={self.d_model} is too small for {len(self.kernel_sizes)} "
                             f"kernel sizes: scale widths {self.scale_dims}")

    # ----- derived sizes -----
    @property
    def embed_steps(self) -> int:
        """Outputs of the strided embedding convolution per patch (8 for 200 samples)."""
        return (self.patch_size - 1) // EMBED_STRIDE + 1

    @property
    def embed_channels(self) -> int:
        """Channels of the embedding conv stack (25 for d_model 200)."""
        return self.d_model // self.embed_steps

    @property
    def scale_dims(self) -> tuple[int, ...]:
        """Output widths of the multi-scale convolutions, one per kernel size (100, 50, 50)."""
        dims = [self.d_model // 2 ** (i + 1) for i in range(len(self.kernel_sizes) - 1)]
        return (*dims, self.d_model - sum(dims))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    # ----- (de)serialisation: the one mechanism of csbrain.configio -----
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists)."""
        return configio.to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CSBrainConfig:
        """Rebuild a config; unknown keys are rejected with the closest valid names."""
        return configio.from_dict(cls, d)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> CSBrainConfig:
        """Return the preset ``name`` (see :func:`list_config_presets`), with overrides."""
        check_option("preset", name, list(CONFIG_PRESETS))
        return dataclasses.replace(CONFIG_PRESETS[name], **overrides)

    def replace(self, **changes: Any) -> CSBrainConfig:
        return dataclasses.replace(self, **changes)


#: Named model sizes. ``released`` is the authors' configuration (8,902,000 parameters with
#: the reconstruction head); ``small`` and ``tiny`` fit CPU demos and tests.
CONFIG_PRESETS: dict[str, CSBrainConfig] = {
    "released": CSBrainConfig(),
    "released-paper": CSBrainConfig(temporal_mode="paper"),
    "small": CSBrainConfig(n_layers=4, temporal_mode="paper"),
    "tiny": CSBrainConfig(d_model=40, n_layers=2, n_heads=4, dim_feedforward=80,
                          temporal_mode="paper"),
}


def list_config_presets() -> list[str]:
    """Names of the model-size presets."""
    return list(CONFIG_PRESETS)


__all__ = ["CSBrainConfig", "CONFIG_PRESETS", "TEMPORAL_MODES", "list_config_presets"]
