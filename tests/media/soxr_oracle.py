#!/usr/bin/env python3
"""Independent oracle for the audio loader: what librosa.load(path, sr=SR) returns, rebuilt from its parts.

  soxr_oracle.py IN.wav OUT.npy [--sr 16000]
      reads a PCM WAV with Python's wave module, scales it to float32 as soundfile does (u8: (x-128)/128, 16-bit:
      x/2^15, 24/32-bit: the value as a 32-bit integer / 2^31), takes the channel mean as librosa.to_mono does
      (np.mean over the channel axis of soundfile's array transposed), then resamples as librosa.resample with
      res_type 'soxr_hq' does.
  soxr_oracle.py IN.npy OUT.npy --in-rate R [--sr 16000]
      the resampling step alone, on a float32 mono .npy.

The resampler is the system libsoxr (libsoxr.so.0) through ctypes, called as python-soxr does: soxr_oneshot with
float32 interleaved I/O and soxr_quality_spec(SOXR_HQ, 0), an output buffer of ilen * out / in + 1 samples, the
odone samples kept; then librosa's fix_length to int(ceil(ilen * (out / in))). A signal already at SR is returned
as it is. Needs only numpy.
"""
import argparse
import ctypes
import math
import sys
import wave

import numpy as np

SOXR_FLOAT32_I = 0
SOXR_HQ = 4  # SOXR_20_BITQ


class IoSpec(ctypes.Structure):
    _fields_ = [("itype", ctypes.c_int), ("otype", ctypes.c_int), ("scale", ctypes.c_double),
                ("e", ctypes.c_void_p), ("flags", ctypes.c_ulong)]


class QualitySpec(ctypes.Structure):
    _fields_ = [("precision", ctypes.c_double), ("phase_response", ctypes.c_double),
                ("passband_end", ctypes.c_double), ("stopband_begin", ctypes.c_double),
                ("e", ctypes.c_void_p), ("flags", ctypes.c_ulong)]


def load_soxr():
    lib = ctypes.CDLL("libsoxr.so.0")
    lib.soxr_io_spec.restype = IoSpec
    lib.soxr_io_spec.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.soxr_quality_spec.restype = QualitySpec
    lib.soxr_quality_spec.argtypes = [ctypes.c_ulong, ctypes.c_ulong]
    lib.soxr_oneshot.restype = ctypes.c_char_p
    lib.soxr_oneshot.argtypes = [
        ctypes.c_double, ctypes.c_double, ctypes.c_uint,
        ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t),
        ctypes.POINTER(IoSpec), ctypes.POINTER(QualitySpec), ctypes.c_void_p]
    return lib


def soxr_resample(x, in_rate, out_rate):
    lib = load_soxr()
    x = np.ascontiguousarray(x, dtype=np.float32)
    ilen = x.shape[0]
    olen = int(ilen * out_rate / in_rate + 1)
    y = np.zeros(olen, dtype=np.float32)
    io = lib.soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I)
    quality = lib.soxr_quality_spec(SOXR_HQ, 0)
    idone = ctypes.c_size_t(0)
    odone = ctypes.c_size_t(0)
    err = lib.soxr_oneshot(float(in_rate), float(out_rate), 1,
                           x.ctypes.data, ilen, ctypes.byref(idone),
                           y.ctypes.data, olen, ctypes.byref(odone),
                           ctypes.byref(io), ctypes.byref(quality), None)
    if err:
        sys.exit(f"soxr_oneshot failed: {err.decode()}")
    return y[:odone.value]


def fix_length(y, size):
    if y.shape[0] >= size:
        return y[:size]
    return np.pad(y, (0, size - y.shape[0]))


def librosa_resample(y, orig_sr, target_sr):
    if orig_sr == target_sr:
        return y
    n_samples = int(math.ceil(y.shape[-1] * (float(target_sr) / orig_sr)))
    return fix_length(soxr_resample(y, orig_sr, target_sr), n_samples)


def read_wav(path):
    """soundfile.read(path, dtype='float32') for PCM WAVs: [frames, channels] (1-D for mono), and the rate."""
    with wave.open(path, "rb") as w:
        channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(frames)
    if width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - np.float32(128)) / np.float32(128)
    elif width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / np.float32(2 ** 15)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.uint32)
        v = ((b[:, 0] << 8) | (b[:, 1] << 16) | (b[:, 2] << 24)).view(np.int32)
        x = v.astype(np.float32) / np.float32(2 ** 31)
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float32) / np.float32(2 ** 31)
    else:
        sys.exit(f"unsupported sample width {width}")
    x = x.reshape(-1, channels)
    return (x[:, 0] if channels == 1 else x), rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--sr", type=int, default=16000)
    ap.add_argument("--in-rate", type=int, default=0)
    args = ap.parse_args()
    if args.input.endswith(".npy"):
        y, rate = np.load(args.input).astype(np.float32), args.in_rate
    else:
        y, rate = read_wav(args.input)
        if y.ndim > 1:
            y = np.mean(y.T, axis=-2)  # librosa.to_mono on soundfile's array transposed, as librosa.load does
    out = librosa_resample(y, rate, args.sr).astype(np.float32)
    np.save(args.output, out)
    print(f"{args.input}: {y.shape[-1]} samples at {rate} Hz -> {out.shape[0]} at {args.sr} Hz")


if __name__ == "__main__":
    main()
