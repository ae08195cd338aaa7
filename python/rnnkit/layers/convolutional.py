"""Convolution layers (NumPy, inference only): Conv1D, Conv2D, SeparableConv1D and
DepthwiseConv1D, with Keras 3's arguments, weights and output shapes. A convolution is an
im2col over a sliding-window view of the padded input followed by one matrix product (a
batched one per channel group). As in Keras, none of them supports masking: a mask is dropped.
The private helpers (argument checks, padding amounts, output lengths, windows) also serve
the pooling layers.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import activations as _activations
from .core import ModelLayer, Shape

__all__ = ["Conv1D", "Conv2D", "DepthwiseConv1D", "SeparableConv1D"]

# Training-only arguments of the depthwise/separable layers (the base strips the kernel_* ones).
_DEPTHWISE_TRAINING_ONLY = (
    "depthwise_regularizer",
    "pointwise_regularizer",
    "depthwise_constraint",
    "pointwise_constraint",
)


# --------------------------------------------------------------------------- argument checks
def _int_tuple(value: Any, n: int, name: str) -> tuple[int, ...]:
    """`value` (an int or `n` ints, all > 0) as a tuple of `n` ints, as Keras's
    standardize_tuple."""
    message = f"The `{name}` argument must be a tuple of {n} integers. Received: {name}={value!r}"
    try:
        if isinstance(value, (int, np.integer)):
            values = (operator.index(value),) * n
        else:
            values = tuple(operator.index(v) for v in value)
    except TypeError:
        raise ValueError(message) from None
    if len(values) != n:
        raise ValueError(message)
    if any(v <= 0 for v in values):
        raise ValueError(f"{message}, including values that do not satisfy `value > 0`")
    return values


def _padding_arg(value: Any, allowed: Sequence[str]) -> str:
    padding = value.lower() if isinstance(value, str) else value
    if padding not in allowed:
        raise ValueError(
            f"The `padding` argument must be one of {set(allowed)}. Received: padding={value!r}"
        )
    return padding


def _data_format_arg(value: Any) -> str:
    if value is None:
        return "channels_last"  # Keras's default image_data_format
    data_format = str(value).lower()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            "The `data_format` argument must be one of {'channels_first', 'channels_last'}. "
            f"Received: data_format={value!r}"
        )
    return data_format


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(
            f"Invalid value for argument `{name}`. Expected a strictly positive value. "
            f"Received {name}={value!r}."
        )
    return int(value)


# --------------------------------------------------------------------------- conv arithmetic
def _output_length(
    size: int | None, kernel: int, stride: int, dilation: int, padding: str
) -> int | None:
    """The output length along one spatial axis (None for an unknown input length)."""
    if size is None:
        return None
    if padding == "valid":
        return (size - dilation * (kernel - 1) - 1) // stride + 1
    return (size - 1) // stride + 1  # "same" and "causal"


def _padding_amounts(
    size: int, kernel: int, stride: int, dilation: int, padding: str
) -> tuple[int, int]:
    """(before, after) padding along one spatial axis; "same" puts the odd element after, as
    TensorFlow/JAX (and so Keras) do."""
    span = dilation * (kernel - 1) + 1
    if padding == "valid":
        return 0, 0
    if padding == "causal":
        return span - 1, 0
    out = _output_length(size, kernel, stride, dilation, padding)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _output_shape(
    layer: ModelLayer,
    input_shape: Sequence[int | None],
    channels: int | None,
    window: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    padding: str,
    data_format: str,
) -> Shape:
    """Keras's output shape of a convolution or pooling with `channels` output channels."""
    shape = tuple(input_shape)
    rank = len(window)
    if len(shape) != rank + 2:
        raise ValueError(
            f"Input 0 of layer {layer.name} is incompatible: expected rank {rank + 2}. "
            f"Received: input_shape={shape}"
        )
    spatial = shape[1:-1] if data_format == "channels_last" else shape[2:]
    out = tuple(
        _output_length(n, k, s, d, padding)
        for n, k, s, d in zip(spatial, window, strides, dilation)
    )
    if any(n is not None and n <= 0 for n in out):
        raise ValueError(
            f"Layer {layer.name}: computed output size would be zero or negative. Received: "
            f"input_shape={shape}, window={tuple(window)}, strides={tuple(strides)}, "
            f"dilation_rate={tuple(dilation)}, padding={padding!r}"
        )
    if data_format == "channels_last":
        return (shape[0], *out, channels)
    return (shape[0], channels, *out)


def _windows(
    x: np.ndarray,
    window: Sequence[int],
    strides: Sequence[int],
    dilation: Sequence[int],
    padding: str,
    layer: ModelLayer,
    fill: float = 0.0,
    shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """The (batch, *out, *window, channels) view of every window of the channels-last `x`,
    padded with `fill` (dilated taps only, strided positions only); `shape` is the shape the
    caller received, for the error message. Channels last, so a window's rows are contiguous
    runs and the im2col copy of a convolution reads memory in order."""
    rank = len(window)
    spatial = x.shape[1:-1]
    out = [_output_length(*a, padding) for a in zip(spatial, window, strides, dilation)]
    if any(n <= 0 for n in out):
        raise ValueError(
            f"Input 0 of layer {layer.name} is too small: computed output size would be zero "
            f"or negative (window {tuple(window)}, strides {tuple(strides)}, dilation_rate "
            f"{tuple(dilation)}, padding {padding!r}). Received: inputs with shape "
            f"{x.shape if shape is None else shape}"
        )
    pads = [_padding_amounts(*a, padding) for a in zip(spatial, window, strides, dilation)]
    if any(lo or hi for lo, hi in pads):
        padded = np.full(
            (x.shape[0], *(n + lo + hi for n, (lo, hi) in zip(spatial, pads)), x.shape[-1]),
            fill, dtype=x.dtype,
        )  # fmt: skip
        padded[(slice(None), *(slice(lo, lo + n) for n, (lo, _) in zip(spatial, pads)))] = x
        x = padded
    else:
        x = np.ascontiguousarray(x)
    step = x.strides[1 : rank + 1]
    view = np.ndarray(  # as as_strided, without its per-call cost (x is C-contiguous)
        (x.shape[0], *out, *window, x.shape[-1]),
        dtype=x.dtype,
        buffer=x,
        strides=(
            x.strides[0],
            *(t * s for t, s in zip(step, strides)),
            *(t * d for t, d in zip(step, dilation)),
            x.strides[-1],
        ),
    )
    view.flags.writeable = False
    return view


def _grouped_product(windows: np.ndarray, kernel: np.ndarray, groups: int) -> np.ndarray:
    """Windows (batch, *out, *k, C) times kernel (*k, C // groups, F) -> (batch, *out, F).
    The g-th slice of C // groups input channels feeds the g-th slice of F // groups filters,
    as in Keras (JAX's feature_group_count). One matrix product (per group): the windows'
    copy is the im2col matrix, rows (out position) by (taps, channels), the kernel's own
    layout."""
    rank = kernel.ndim - 2
    lead = windows.shape[: rank + 1]
    group_in, filters = kernel.shape[-2:]
    taps = math.prod(kernel.shape[:rank])
    rows = math.prod(lead)
    if groups == 1:
        y = windows.reshape(rows, taps * group_in) @ kernel.reshape(taps * group_in, filters)
        return y.reshape(*lead, filters)
    cols = windows.reshape(rows, taps, groups, group_in).transpose(2, 0, 1, 3)
    weights = kernel.reshape(taps, group_in, groups, filters // groups).transpose(2, 0, 1, 3)
    y = np.matmul(cols.reshape(groups, rows, taps * group_in),
                  weights.reshape(groups, taps * group_in, filters // groups))
    return y.transpose(1, 0, 2).reshape(*lead, filters)


# --------------------------------------------------------------------------- the base class
class _Conv(ModelLayer):
    """What the convolution layers share: window arguments, input checks, bias + activation."""

    supports_masking = False  # Keras's convolutions define no compute_mask: the mask is dropped
    _rank = 1
    _paddings: tuple[str, ...] = ("valid", "same")

    def _set_window_args(
        self,
        kernel_size: Any,
        strides: Any,
        padding: Any,
        data_format: Any,
        dilation_rate: Any,
        activation: Any,
        use_bias: bool,
    ) -> None:
        self.kernel_size = _int_tuple(kernel_size, self._rank, "kernel_size")
        self.strides = _int_tuple(strides, self._rank, "strides")
        self.dilation_rate = _int_tuple(dilation_rate, self._rank, "dilation_rate")
        self.padding = _padding_arg(padding, self._paddings)
        self.data_format = _data_format_arg(data_format)
        self.activation = _activations.get_for_layer(activation)
        self.use_bias = bool(use_bias)

    def _layout(self) -> str:
        spatial = "steps" if self._rank == 1 else "rows, cols"
        if self.data_format == "channels_last":
            return f"(batch, {spatial}, channels)"
        return f"(batch, channels, {spatial})"

    def _input_channels(self, input_shape: Sequence[int | None]) -> int:
        """Checks a build shape; returns its channel count."""
        shape = tuple(input_shape)
        if len(shape) != self._rank + 2:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected rank {self._rank + 2}, "
                f"{self._layout()}. Received: input_shape={shape}"
            )
        channels = shape[-1] if self.data_format == "channels_last" else shape[1]
        if channels is None:
            raise ValueError(
                f"{self.name} needs the channel dimension of its input to build. Received: "
                f"input_shape={shape}"
            )
        return int(channels)

    def build(self, input_shape: Sequence[int | None]) -> None:
        self._channels = self._input_channels(input_shape)
        self.compute_output_shape(input_shape)  # checks the spatial sizes, as Keras
        self._make_weights(self._channels)
        super().build(input_shape)

    def _make_weights(self, channels: int) -> None:
        raise NotImplementedError

    def _windows_of(self, x: np.ndarray) -> np.ndarray:
        """Checks the inputs; their (batch, *out, *kernel_size, channels) windows."""
        channel_axis = -1 if self.data_format == "channels_last" else 1
        if x.ndim != self._rank + 2 or x.shape[channel_axis] != self._channels:
            raise ValueError(
                f"Input 0 of layer {self.name} is incompatible: expected rank "
                f"{self._rank + 2}, {self._layout()}, with {self._channels} channels (axis "
                f"{channel_axis}). Received: inputs with shape {x.shape}"
            )
        shape = x.shape
        if self.data_format == "channels_first":
            x = np.moveaxis(x, 1, -1)
        return _windows(
            x, self.kernel_size, self.strides, self.dilation_rate, self.padding, self,
            shape=shape,
        )  # fmt: skip

    def _finish(self, y: np.ndarray) -> np.ndarray:
        """Bias, activation and layout of the channels-last result."""
        if self.bias is not None:
            y = y + self.bias
        y = np.asarray(self.activation(y), dtype=self.dtype)
        if self.data_format == "channels_first":
            y = np.moveaxis(y, -1, 1)
        return np.ascontiguousarray(y)

    def _output_channels(self, channels: int | None) -> int | None:
        raise NotImplementedError

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> Shape:
        shape = tuple(input_shape)
        channels = None
        if len(shape) == self._rank + 2:
            channels = shape[-1] if self.data_format == "channels_last" else shape[1]
        return _output_shape(
            self,
            shape,
            self._output_channels(channels),
            self.kernel_size,
            self.strides,
            self.dilation_rate,
            self.padding,
            self.data_format,
        )

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": self.dilation_rate,
            "activation": _activations.serialize_for_layer(self.activation),
            "use_bias": self.use_bias,
        }


# --------------------------------------------------------------------------- Conv1D & Conv2D
class _BaseConv(_Conv):
    """Conv1D/Conv2D: weights kernel (*kernel_size, channels // groups, filters), bias."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        groups: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        lora_rank = kwargs.pop("lora_rank", None)
        lora_alpha = kwargs.pop("lora_alpha", None)
        if lora_rank:
            raise ValueError(
                f"{type(self).__name__} with LoRA is not supported by rnnkit: merge the LoRA "
                f"weights into `kernel` first. Received: lora_rank={lora_rank!r}, "
                f"lora_alpha={lora_alpha!r}"
            )
        super().__init__(**kwargs)
        self._set_window_args(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
        )
        self.filters = _positive_int(filters, "filters")
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
            raise ValueError(
                f"The number of groups must be a positive integer. Received: groups={groups!r}."
            )
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ValueError(
                "The number of filters must be evenly divisible by the number of groups. "
                f"Received: groups={self.groups}, filters={self.filters}."
            )
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(
                "`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer

    def _make_weights(self, channels: int) -> None:
        if channels % self.groups:
            raise ValueError(
                "The number of input channels must be evenly divisible by the number of "
                f"groups. Received groups={self.groups}, but the input of {self.name} has "
                f"{channels} channels."
            )
        self.kernel = self.add_weight(
            (*self.kernel_size, channels // self.groups, self.filters),
            self.kernel_initializer,
            name="kernel",
        )
        self.bias = (
            self.add_weight((self.filters,), self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        y = _grouped_product(self._windows_of(x), self.kernel, self.groups)
        return self._finish(y), None

    def _output_channels(self, channels: int | None) -> int | None:
        return self.filters

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }


class Conv1D(_BaseConv):
    """1-D convolution (cross-correlation) over steps, as `keras.layers.Conv1D`:
    `activation(conv1d(inputs, kernel) + bias)`; padding "valid", "same" or "causal"."""

    _paddings = ("valid", "same", "causal")


class Conv2D(_BaseConv):
    """2-D convolution (cross-correlation) over rows and columns, as `keras.layers.Conv2D`:
    `activation(conv2d(inputs, kernel) + bias)`; padding "valid" or "same"."""

    _rank = 2


# --------------------------------------------------------------------------- depthwise
class DepthwiseConv1D(_Conv):
    """Per-channel 1-D convolution, as `keras.layers.DepthwiseConv1D`: each input channel c
    gets `depth_multiplier` filters (output channel c * depth_multiplier + m); weights kernel
    (kernel_size, channels, depth_multiplier) and bias (channels * depth_multiplier,)."""

    def __init__(
        self,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: Any = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        for key in _DEPTHWISE_TRAINING_ONLY:
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        self._set_window_args(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
        )
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier")
        self.depthwise_initializer = depthwise_initializer
        self.bias_initializer = bias_initializer

    def _make_weights(self, channels: int) -> None:
        self.kernel = self.add_weight(
            (*self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer,
            name="kernel",
        )
        self.bias = (
            self.add_weight((channels * self.depth_multiplier,), self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        return self._finish(_depthwise(self._windows_of(x), self.kernel)), None

    def _output_channels(self, channels: int | None) -> int | None:
        return None if channels is None else channels * self.depth_multiplier

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": self.depthwise_initializer,
            "bias_initializer": self.bias_initializer,
        }


def _depthwise(windows: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """A depthwise convolution is a grouped one with one input channel per group: kernel
    (*k, C, M) -> (*k, 1, C * M), groups C."""
    *taps, channels, multiplier = kernel.shape
    return _grouped_product(windows, kernel.reshape(*taps, 1, channels * multiplier), channels)


class SeparableConv1D(_Conv):
    """Depthwise then pointwise 1-D convolution, as `keras.layers.SeparableConv1D`: weights
    depthwise_kernel (kernel_size, channels, depth_multiplier), pointwise_kernel
    (1, channels * depth_multiplier, filters) and bias (filters,)."""

    def __init__(
        self,
        filters: int,
        kernel_size: Any,
        strides: Any = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: Any = 1,
        depth_multiplier: int = 1,
        activation: Any = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        **kwargs: Any,
    ) -> None:
        for key in _DEPTHWISE_TRAINING_ONLY:
            kwargs.pop(key, None)
        super().__init__(**kwargs)
        self._set_window_args(
            kernel_size, strides, padding, data_format, dilation_rate, activation, use_bias
        )
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier")
        self.filters = _positive_int(filters, "filters")
        self.depthwise_initializer = depthwise_initializer
        self.pointwise_initializer = pointwise_initializer
        self.bias_initializer = bias_initializer

    def _make_weights(self, channels: int) -> None:
        depth = channels * self.depth_multiplier
        self.depthwise_kernel = self.add_weight(
            (*self.kernel_size, channels, self.depth_multiplier),
            self.depthwise_initializer,
            name="depthwise_kernel",
        )
        self.pointwise_kernel = self.add_weight(
            (*(1,) * self._rank, depth, self.filters),
            self.pointwise_initializer,
            name="pointwise_kernel",
        )
        self.bias = (
            self.add_weight((self.filters,), self.bias_initializer, name="bias")
            if self.use_bias
            else None
        )

    def _forward(self, x: np.ndarray, mask: Any) -> tuple[np.ndarray, Any]:
        depthwise = _depthwise(self._windows_of(x), self.depthwise_kernel)
        pointwise = self.pointwise_kernel.reshape(self.pointwise_kernel.shape[-2:])
        return self._finish(depthwise @ pointwise), None

    def _output_channels(self, channels: int | None) -> int | None:
        return self.filters

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "filters": self.filters,
            "depth_multiplier": self.depth_multiplier,
            "depthwise_initializer": self.depthwise_initializer,
            "pointwise_initializer": self.pointwise_initializer,
            "bias_initializer": self.bias_initializer,
        }
