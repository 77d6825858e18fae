"""Generated music for the matcher benchmark: distinct, deterministic by seed, structured like songs.

Why generated and not real recordings: the repository ships no audio (no data directories), and the benchmark
must run offline. Pure sines are useless for Chromaprint (their chroma barely changes, so every tone looks
alike), so each track has what the fingerprint keys on: a key and scale, a chord progression per section, a
melody (a random walk on the scale), a bass line, drums (kick, snare, hi-hat noise) and a noise floor, with a
verse/chorus form whose sections repeat, as songs do. Tempo, key, scale, timbres, progression, melody and
drum pattern all come from the seed, so two seeds give two different songs, and one seed always the same one.

>>> a = synth_track(1, 2.0); b = synth_track(1, 2.0); a.shape, bool((a == b).all()), float(abs(a).max()) <= 1.0
((44100,), True, True)
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

__all__ = ["SAMPLE_RATE", "synth_track", "write_wav"]

SAMPLE_RATE = 22050  # fpcalc resamples to 11025 Hz; 22050 keeps the hi-hats' top octave
_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
}


def _freq(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


_TABLE_SIZE = 4096


def _wavetable(harmonics: np.ndarray) -> np.ndarray:
    """One period of a timbre: the harmonics' sines summed, so a note is one table lookup per sample (summing
    the sines per note made a 3-minute song take seconds)."""
    k = np.arange(_TABLE_SIZE) / _TABLE_SIZE
    return sum(a * np.sin(2 * np.pi * (h + 1) * k) for h, a in enumerate(harmonics))


def _note(out: np.ndarray, start_s: float, dur_s: float, freq: float, amp: float, table: np.ndarray,
          attack_s: float, decay_per_s: float) -> None:
    """Add one enveloped tone of timbre `table` to `out` (in place)."""
    start = int(start_s * SAMPLE_RATE)
    n = min(int(dur_s * SAMPLE_RATE), len(out) - start)
    if n <= 0:
        return
    t = np.arange(n) / SAMPLE_RATE
    wave = table[(np.arange(n) * (freq * _TABLE_SIZE / SAMPLE_RATE)).astype(np.int64) % _TABLE_SIZE]
    envelope = np.minimum(1.0, t / attack_s) * np.exp(-decay_per_s * t)
    envelope[-min(n, 200):] *= np.linspace(1, 0, min(n, 200))  # no click at the note's end
    out[start:start + n] += amp * wave * envelope


def _drum(out: np.ndarray, start_s: float, kind: str, rng: np.random.Generator, amp: float) -> None:
    start = int(start_s * SAMPLE_RATE)
    n = min(int(0.25 * SAMPLE_RATE), len(out) - start)
    if n <= 0:
        return
    t = np.arange(n) / SAMPLE_RATE
    if kind == "kick":  # a sine falling from 120 to 50 Hz
        phase = 2 * np.pi * (50 * t + 70 * (1 - np.exp(-t * 30)) / 30)
        hit = np.sin(phase) * np.exp(-t * 18)
    elif kind == "snare":
        hit = (rng.standard_normal(n) * 0.7 + np.sin(2 * np.pi * 185 * t)) * np.exp(-t * 22)
    else:  # hi-hat: differenced (high-passed) noise, short
        hit = np.diff(rng.standard_normal(n + 1)) * np.exp(-t * 80)
    out[start:start + n] += amp * hit


def _section(rng: np.random.Generator, scale: tuple[int, ...], bars: int) -> dict:
    """One section's material: chord roots (scale degrees) per bar, melody notes (beat, beats, degree), drums."""
    progression = [0, *rng.choice(7, size=3)] if rng.random() < 0.5 else list(rng.choice(7, size=4))
    melody, beat, degree = [], 0.0, int(rng.integers(0, 7))
    while beat < bars * 4:
        length = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), -3, 12))
        if rng.random() > 0.15:  # a rest otherwise
            melody.append((beat, length, degree))
        beat += length
    drums = {"kick": rng.random(16) < 0.25, "snare": rng.random(16) < 0.12, "hat": rng.random(16) < 0.6}
    drums["kick"][0] = True
    drums["snare"][[4, 12]] |= rng.random() < 0.8
    return {"progression": progression, "melody": melody, "drums": drums, "bars": bars}


def synth_track(seed: int, duration_s: float) -> np.ndarray:
    """`duration_s` seconds of a generated song (float32, mono, SAMPLE_RATE Hz, peak 0.9)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(duration_s * SAMPLE_RATE), dtype=np.float64)
    bpm = float(rng.uniform(72, 160))
    beat_s = 60.0 / bpm
    root = int(rng.integers(45, 57))
    scale = _SCALES[str(rng.choice(list(_SCALES)))]
    lead, pad, bass = (rng.uniform(0.05, 1.0, size=k) for k in (6, 4, 2))
    lead[0] = pad[0] = bass[0] = 1.0
    lead, pad, bass = _wavetable(lead), _wavetable(pad), _wavetable(bass)
    sections = [_section(rng, scale, bars=int(rng.choice([4, 8]))) for _ in range(3)]
    form = [0, 0, 1, 0, 1, 2, 1, 1]  # intro-verse-chorus-like: the first sections repeat most

    def pitch(degree: int, octave: int) -> float:
        return _freq(root + 12 * (octave + degree // 7) + scale[degree % 7])

    def render(section: dict) -> np.ndarray:
        """One pass of a section, with 2 s of tail for the last notes' decay. Rendered once and added at each
        repeat, as a song's chorus repeats (and 5x faster than rendering every pass)."""
        length_s = section["bars"] * 4 * beat_s
        buf = np.zeros(int((length_s + 2.0) * SAMPLE_RATE))
        for bar in range(section["bars"]):
            bar_s = bar * 4 * beat_s
            chord = int(section["progression"][bar % 4])
            for third in (0, 2, 4):
                _note(buf, bar_s, 4 * beat_s, pitch(chord + third, 1), 0.12, pad, 0.08, 0.4)
            for beat in range(4):
                _note(buf, bar_s + beat * beat_s, beat_s, pitch(chord, 0), 0.25, bass, 0.01, 2.0)
            for sixteenth in range(16):
                for kind, amp in (("kick", 0.6), ("snare", 0.35), ("hat", 0.12)):
                    if section["drums"][kind][sixteenth]:
                        _drum(buf, bar_s + sixteenth * beat_s / 4, kind, rng, amp)
        for start, length, degree in section["melody"]:
            _note(buf, start * beat_s, length * beat_s, pitch(degree, 2), 0.22, lead, 0.02, 1.5)
        return buf

    rendered = [render(section) for section in sections]
    t_s, step = 0.0, 0
    while t_s < duration_s:
        index = form[step % len(form)]
        step += 1
        at = int(t_s * SAMPLE_RATE)
        piece = rendered[index][: len(out) - at]
        out[at:at + len(piece)] += piece
        t_s += sections[index]["bars"] * 4 * beat_s
    out += rng.uniform(0.002, 0.03) * rng.standard_normal(len(out))
    return (0.9 * out / max(float(np.abs(out).max()), 1e-9)).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    """`audio` (float, -1..1, SAMPLE_RATE Hz, mono) as a 16-bit PCM WAV file; returns `path`."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path
