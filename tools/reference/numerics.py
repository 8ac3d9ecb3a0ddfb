"""Number formats and the two precision modes of the reference implementation.

bf16 handling is written from the IEEE-754 layout: a bfloat16 is the upper 16 bits of a float32
(1 sign, 8 exponent, 7 mantissa bits). Conversions to bf16 round to nearest, ties to even, the way
PyTorch's float -> bfloat16 cast does; NaN stays NaN and values past the largest bf16 become inf.

Two modes (``Numerics``):
  * ``fp32``: the most exact reference. Everything is float64 and ``round`` is the identity.
  * ``bf16``: emulates the Hugging Face bf16 dtype flow. Tensors are float32 arrays whose values are
    representable in bf16; ``round`` rounds a float32 result to bf16. An elementwise op on two bf16
    operands is computed in float32 and then rounded, which is what torch does for bf16 tensors.
"""

import numpy as np

PRECISIONS = ("fp32", "bf16")


def bf16_bits_to_f32(bits):
    """uint16 array of bf16 bit patterns -> float32 array (exact)."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 array -> uint16 bf16 bit patterns, round to nearest even; NaN kept as a quiet NaN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32)
    lsb = (bits >> np.uint32(16)) & np.uint32(1)
    rounded = (bits + np.uint32(0x7FFF) + lsb) >> np.uint32(16)
    nan = np.isnan(x)
    if nan.any():
        rounded = np.where(nan, (bits >> np.uint32(16)) | np.uint32(0x0040), rounded)
    return rounded.astype(np.uint16)


def round_bf16(x):
    """Round to the nearest bf16 value (ties to even). Input of any float dtype is first cast to
    float32 (as an fp32 accumulator would hold it); the result is a float32 array."""
    return bf16_bits_to_f32(f32_to_bf16_bits(np.asarray(x, dtype=np.float32)))


def f16_bits_to_f32(bits):
    return np.asarray(bits, dtype=np.uint16).view(np.float16).astype(np.float32)


class Numerics:
    """Precision policy shared by all towers.

    ``dtype``   the array dtype activations and weights are held in;
    ``round``   rounding applied wherever the reference stores a bf16 tensor;
    ``weight``  converts a stored weight (float32 values) to the working representation.
    """

    def __init__(self, precision):
        if precision not in PRECISIONS:
            raise ValueError("precision must be one of %s, got %r" % (PRECISIONS, precision))
        self.precision = precision
        self.is_bf16 = precision == "bf16"
        self.dtype = np.float32 if self.is_bf16 else np.float64

    def round(self, x):
        if self.is_bf16:
            return round_bf16(x)
        return np.asarray(x, dtype=np.float64)

    def weight(self, w):
        # A bf16 model holds every parameter in bf16 (an fp32 checkpoint would be cast on load).
        return self.round(w)

    def linear(self, x, w, b=None):
        """y = x . w^T + b. Accumulates in float64 over the (bf16-valued in bf16 mode) inputs; the bias
        is added before the single output rounding, as a fused GEMM epilogue does."""
        y = np.asarray(x, dtype=np.float64) @ np.asarray(w, dtype=np.float64).T
        if b is not None:
            y = y + np.asarray(b, dtype=np.float64)
        return self.round(y)

    def mul(self, a, b):
        return self.round(np.asarray(a, self.dtype) * np.asarray(b, self.dtype))

    def add(self, a, b):
        return self.round(np.asarray(a, self.dtype) + np.asarray(b, self.dtype))

    def sub(self, a, b):
        return self.round(np.asarray(a, self.dtype) - np.asarray(b, self.dtype))
