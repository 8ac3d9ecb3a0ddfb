#!/usr/bin/env python3
"""Self-tests of the reference log-mel features (audio_features.py). Run:
python3 tools/reference/test_audio_features_reference.py
Prints one line per test and "N passed, M failed"; exits non-zero on any failure."""

import math
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from audio_features import (hz_to_mel, log_mel, mel_filter_bank, mel_to_hz, token_count,  # noqa: E402
                            valid_frames)
from selftest import run_selftests  # noqa: E402

TESTS = []
TMP = {}


def test(fn):
    TESTS.append(fn)
    return fn


@test
def mel_scale_values_and_break():
    assert abs(float(hz_to_mel(8000.0)) - 45.245640471924965) < 1e-12
    assert float(hz_to_mel(0.0)) == 0.0
    assert abs(float(hz_to_mel(200.0)) - 3.0) < 1e-12  # linear part: 3 mel per 200 Hz
    assert abs(float(hz_to_mel(1000.0)) - 15.0) < 1e-12
    assert abs(float(hz_to_mel(6400.0)) - 42.0) < 1e-12  # a factor 6.4 above the break adds 27 mel
    # continuous at the break, with the slope changing there
    below, above = float(hz_to_mel(1000.0 - 1e-6)), float(hz_to_mel(1000.0 + 1e-6))
    assert abs(below - 15.0) < 1e-7 and abs(above - 15.0) < 1e-7
    f = np.array([0.0, 37.5, 999.0, 1000.0, 1234.5, 7999.0, 8000.0])
    assert np.allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-13, atol=1e-12)


@test
def mel_bank_triangles_and_slaney_area():
    bank = mel_filter_bank(128, 400, 16000)
    assert bank.shape == (201, 128) and bank.dtype == np.float64
    assert (bank >= 0).all()
    fpts = mel_to_hz(np.linspace(0.0, float(hz_to_mel(8000.0)), 130))
    freqs = np.linspace(0.0, 8000.0, 201)
    for m in range(128):
        col = bank[:, m]
        nz = np.nonzero(col)[0]
        assert nz.size > 0, "empty triangle %d" % m
        # support inside (f[m], f[m+2]); one contiguous run, rising then falling
        assert freqs[nz[0]] > fpts[m] and freqs[nz[-1]] < fpts[m + 2]
        assert (np.diff(nz) == 1).all()
        peak = int(np.argmax(col))
        assert (np.diff(col[nz[0]:peak + 1]) >= 0).all() and (np.diff(col[peak:nz[-1] + 1]) <= 0).all()
        # height at most 2 / (f[m+2] - f[m]) (reached at f[m+1])
        assert col.max() <= 2.0 / (fpts[m + 2] - fpts[m]) * (1 + 1e-12)
    # Slaney norm: every triangle has unit area in Hz. The 40 Hz bins are too coarse to integrate the narrow low
    # triangles (about 47 Hz wide), so the area is measured on a bank with the same mel points and 0.4 Hz bins.
    fine = mel_filter_bank(128, 40000, 16000)
    areas = fine.sum(axis=0) * (8000.0 / 20000)
    assert np.abs(areas - 1.0).max() < 1e-3, areas


@test
def frame_count_and_tokens():
    for max_samples in (32000, 48000):
        feats, t = log_mel(np.zeros(100, np.float32), max_samples=max_samples)
        assert feats.shape == (128, max_samples // 160) and feats.dtype == np.float32
    assert valid_frames(16000) == 100 and token_count(100) == 25
    assert valid_frames(160000) == 1000 and token_count(1000) == 250
    assert valid_frames(300 * 16000) == 30000 and token_count(30000) == 7500
    assert valid_frames(10 ** 9) == 30000  # truncated to max_samples
    assert valid_frames(161) == 2 and valid_frames(160) == 1 and valid_frames(0) == 0
    assert [token_count(t) for t in range(8)] == [0, 0, 0, 1, 1, 1, 1, 2]


@test
def silence_gives_minus_one_and_a_half():
    feats, t = log_mel(np.zeros(5000, np.float32), max_samples=32000)
    assert t == 32 and (feats == np.float32(-1.5)).all()
    feats, t = log_mel(np.zeros(0, np.float32), max_samples=32000)
    assert t == 0 and (feats == np.float32(-1.5)).all()


@test
def floor_rule():
    rng = np.random.default_rng(1)
    x = (0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000) + 1e-4 * rng.standard_normal(8000))
    feats, _ = log_mel(x.astype(np.float32), max_samples=32000)
    top = float(feats.max())
    floor = top - 2.0  # (g - 8 + 4) / 4 = (g + 4) / 4 - 2
    assert abs(float(feats.min()) - floor) < 1e-6
    # the silent tail frames sit on the floor, not at -1.5, since g - 8 > -10 here
    assert abs(float(feats[:, -1].max()) - floor) < 1e-6 and floor > -1.5


def direct_power(clip, j, n_fft=400, hop=160):
    """Power spectrum of frame j by a direct DFT, with the reflection written out index by index."""
    n = clip.size
    frame = np.empty(n_fft)
    for t in range(n_fft):
        i = hop * j - n_fft // 2 + t
        if i < 0:
            i = -i
        elif i >= n:
            i = 2 * (n - 1) - i
        frame[t] = clip[i] * (0.5 - 0.5 * math.cos(2 * math.pi * t / n_fft))
    k = np.arange(n_fft // 2 + 1)[:, None]
    t = np.arange(n_fft)[None, :]
    basis = np.exp(-2j * np.pi * ((k * t) % n_fft) / n_fft)
    return np.abs(basis @ frame) ** 2


@test
def frames_match_a_direct_dft():
    rng = np.random.default_rng(2)
    max_samples = 3200
    x = rng.standard_normal(4000).astype(np.float32)  # longer than max_samples: the end reflects real samples
    feats, t = log_mel(x, max_samples=max_samples)
    assert t == 20
    clip = x[:max_samples].astype(np.float64)
    bank = mel_filter_bank()
    logs = [np.log10(np.maximum(direct_power(clip, j) @ bank, 1e-10)) for j in range(20)]
    g = max(float(np.max(v)) for v in logs)
    for j in (0, 1, 10, 18, 19):
        want = (np.maximum(logs[j], g - 8.0) + 4.0) / 4.0
        assert np.abs(feats[:, j] - want).max() < 1e-5, j


@test
def cli_round_trip():
    tmp = TMP["dir"]
    x = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(3210) / 16000)).astype(np.float32)
    src, dst = os.path.join(tmp, "in.npy"), os.path.join(tmp, "out.npy")
    np.save(src, x)
    proc = subprocess.run([sys.executable, os.path.join(HERE, "audio_features.py"), src, dst,
                           "--max-samples", "32000"], capture_output=True, text=True, check=True)
    assert "valid_frames 21" in proc.stdout and "tokens 5" in proc.stdout, proc.stdout
    out = np.load(dst)
    want, _ = log_mel(x, max_samples=32000)
    assert out.shape == (128, 200) and out.dtype == np.float32 and (out == want).all()
    bad = subprocess.run([sys.executable, os.path.join(HERE, "audio_features.py"), src, dst, "--max-samples", "100"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "max-samples" in bad.stderr


def main():
    def setup(tmp):
        TMP["dir"] = tmp
    return run_selftests(TESTS, setup, "oe_audio_features_reference_test_")


if __name__ == "__main__":
    sys.exit(main())
