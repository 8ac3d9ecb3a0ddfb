#!/usr/bin/env python3
"""Reference Whisper log-mel features (spec qwen25-omni-thinker.md §6.3), numpy in float64, written from the spec.

    python3 tools/reference/audio_features.py IN.npy OUT.npy [--max-samples N]

IN: float32 1-D samples at 16 kHz. OUT: float32 [n_mel, n_frames] features. Prints the valid frames T and the
number of audio tokens ((T - 1)//2 + 1 - 2)//2 + 1.

Steps: truncate / zero-pad to max_samples; reflect-pad n_fft/2 on both ends of the padded buffer; periodic Hann
window; frames every hop samples; one-sided power |X|^2 with numpy's rfft; drop the last frame; Slaney mel filter
bank; log10(max(mel, 1e-10)); floor at (max over the whole clip) - 8; (x + 4) / 4.
"""

import argparse
import sys

import numpy as np

MEL_FLOOR = 1e-10
# The Slaney mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above (27 mel per factor 6.4).
MEL_BREAK_HZ = 1000.0
MEL_BREAK = 15.0
MEL_LOG_STEP = 27.0 / np.log(6.4)


def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    above = f >= MEL_BREAK_HZ
    # np.maximum keeps log() away from 0 in the branch that np.where discards.
    log_part = MEL_BREAK + np.log(np.maximum(f, MEL_BREAK_HZ) / MEL_BREAK_HZ) * MEL_LOG_STEP
    return np.where(above, log_part, 3.0 * f / 200.0)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    above = m >= MEL_BREAK
    log_part = MEL_BREAK_HZ * np.exp((np.maximum(m, MEL_BREAK) - MEL_BREAK) / MEL_LOG_STEP)
    return np.where(above, log_part, 200.0 * m / 3.0)


def mel_filter_bank(n_mel=128, n_fft=400, sr=16000):
    """Slaney-normalised triangles, float64 [n_fft//2 + 1, n_mel]."""
    n_bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0.0, sr / 2.0, n_bins)
    fpts = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mel + 2))
    bank = np.zeros((n_bins, n_mel), dtype=np.float64)
    for m in range(n_mel):
        rising = (fft_freqs - fpts[m]) / (fpts[m + 1] - fpts[m])
        falling = (fpts[m + 2] - fft_freqs) / (fpts[m + 2] - fpts[m + 1])
        bank[:, m] = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (fpts[m + 2] - fpts[m]))
    return bank


def valid_frames(n_samples, max_samples=4800000, hop=160):
    return -(-min(n_samples, max_samples) // hop)


def token_count(t):
    return max(0, ((t - 1) // 2 + 1 - 2) // 2 + 1)


def log_mel(samples, max_samples=4800000, n_mel=128, n_fft=400, hop=160, sr=16000):
    """Returns (features float32 [n_mel, max_samples // hop], valid frames T)."""
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    length = min(samples.size, max_samples)
    clip = np.zeros(max_samples, dtype=np.float64)
    clip[:length] = samples[:length]
    padded = np.pad(clip, (n_fft // 2, n_fft // 2), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    n_frames = 1 + (padded.size - n_fft) // hop - 1  # the last STFT frame is dropped
    bank = mel_filter_bank(n_mel, n_fft, sr)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    log_spec = np.empty((n_frames, n_mel), dtype=np.float64)
    block = 2048  # bounds the memory of the framed spectra on 300 s clips
    for start in range(0, n_frames, block):
        spectrum = np.fft.rfft(frames[start:start + block] * window, axis=1)
        power = np.abs(spectrum) ** 2  # the reference's order: the complex modulus, then squared
        log_spec[start:start + block] = np.log10(np.maximum(power @ bank, MEL_FLOOR))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    features = ((log_spec + 4.0) / 4.0).T.astype(np.float32)
    return np.ascontiguousarray(features), valid_frames(samples.size, max_samples, hop)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="float32 1-D samples (.npy)")
    parser.add_argument("output", help="float32 [n_mel, n_frames] features (.npy)")
    parser.add_argument("--max-samples", type=int, default=4800000)
    args = parser.parse_args(argv)
    samples = np.load(args.input)
    if samples.ndim != 1:
        print("error: %s: expected a 1-D array, got shape %s" % (args.input, samples.shape), file=sys.stderr)
        return 1
    if args.max_samples <= 0 or args.max_samples % 160 != 0:
        print("error: --max-samples must be a positive multiple of 160", file=sys.stderr)
        return 1
    features, t = log_mel(samples, max_samples=args.max_samples)
    np.save(args.output, features)
    print("valid_frames %d" % t)
    print("tokens %d" % token_count(t))
    return 0


if __name__ == "__main__":
    sys.exit(main())
