"""Minimal safetensors reader and writer on numpy.

File layout: an 8-byte little-endian unsigned header length N, then N bytes of UTF-8 JSON
``{name: {"dtype": str, "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}``,
then the data block; offsets are relative to the start of the data block, tensors are row-major
little-endian. Reading is lazy: the file is memory-mapped and a tensor is only touched when asked
for, so indexing a few rows of a large embedding table reads only those rows.
"""

import json
import os
import struct

import numpy as np

from numerics import bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits

# Storage dtype of each safetensors dtype tag.
_STORAGE = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<u2"),
    "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}

_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(Exception):
    pass


class TensorInfo:
    def __init__(self, name, dtype, shape, begin, end):
        self.name = name
        self.dtype = dtype
        self.shape = tuple(int(s) for s in shape)
        self.begin = begin
        self.end = end


class SafetensorsFile:
    """One .safetensors file, memory-mapped."""

    def __init__(self, path):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise SafetensorsError("%s: file shorter than the 8-byte header length" % path)
            (n_header,) = struct.unpack("<Q", raw)
            if n_header > _MAX_HEADER or 8 + n_header > size:
                raise SafetensorsError("%s: header length %d is not plausible (file size %d)"
                                       % (path, n_header, size))
            header = json.loads(f.read(n_header).decode("utf-8"))
        self.data_start = 8 + n_header
        self.metadata = header.pop("__metadata__", None) or {}
        self.tensors = {}
        n_data = size - self.data_start
        for name, entry in header.items():
            dtype = entry["dtype"]
            if dtype not in _STORAGE:
                raise SafetensorsError("%s: tensor %s has unsupported dtype %s" % (path, name, dtype))
            begin, end = (int(v) for v in entry["data_offsets"])
            shape = entry["shape"]
            n_bytes = int(np.prod(shape, dtype=np.int64)) * _STORAGE[dtype].itemsize
            if end - begin != n_bytes or end > n_data or begin < 0:
                raise SafetensorsError("%s: tensor %s: offsets [%d, %d) do not match shape %s dtype %s"
                                       % (path, name, begin, end, shape, dtype))
            self.tensors[name] = TensorInfo(name, dtype, shape, begin, end)
        self._map = np.memmap(path, dtype=np.uint8, mode="r") if size > 0 else None

    def raw(self, name):
        """The stored array (storage dtype: bf16/f16 as uint16 bit patterns), read-only, zero-copy."""
        info = self.tensors[name]
        storage = _STORAGE[info.dtype]
        count = (info.end - info.begin) // storage.itemsize
        arr = np.frombuffer(self._map, dtype=storage, count=count, offset=self.data_start + info.begin)
        return arr.reshape(info.shape)

    def get_f32(self, name, rows=None):
        """Tensor as float32 (exact for BF16/F16/F32 storage). ``rows`` selects along axis 0 first."""
        info = self.tensors[name]
        arr = self.raw(name)
        if rows is not None:
            arr = arr[np.asarray(rows)]
        if info.dtype == "BF16":
            return bf16_bits_to_f32(arr)
        if info.dtype == "F16":
            return f16_bits_to_f32(arr)
        return np.array(arr, dtype=np.float32)


def _encode(dtype, array):
    if dtype == "BF16":
        return f32_to_bf16_bits(np.asarray(array, dtype=np.float32))
    if dtype == "F16":
        return np.asarray(array, dtype=np.float32).astype(np.float16).view(np.uint16)
    return np.asarray(array, dtype=_STORAGE[dtype])


def save_file(path, tensors, metadata=None):
    """Write ``tensors`` ({name: (dtype_tag, array)}) to ``path``. Floats are rounded (to nearest even)
    into the requested dtype."""
    header = {}
    blobs = []
    offset = 0
    for name, (dtype, array) in tensors.items():
        if dtype not in _STORAGE:
            raise SafetensorsError("cannot write dtype %s for %s" % (dtype, name))
        data = np.ascontiguousarray(_encode(dtype, array)).astype(_STORAGE[dtype], copy=False)
        blob = data.tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(array)),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # keep the data block 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
