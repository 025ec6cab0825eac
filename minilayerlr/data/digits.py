"""Synthetic handwritten-like digits: built-in stroke glyphs, randomly written.

Each digit 0-9 is a few strokes (polylines, some sampled from arcs or
quadratic Bezier curves) in the unit square, y pointing down. An image is
made by jittering the stroke vertices, applying a random affine map
(rotation, anisotropic scale, shear, translation), drawing the strokes with a
random pen width as an anti-aliased distance field, blurring with a Gaussian
and adding pixel noise. This stands in for MNIST (LeCun et al., 1998) in the
autoencoder and CNN experiments of Bahamou & Goldfarb (arXiv 2305.13664,
section 5) without any download.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
from scipy import ndimage

from ..validation import check_int, check_memory
from .containers import ImageDataset, balanced_labels, check_float


def _arc(cx, cy, rx, ry, start_deg, stop_deg, num=12) -> np.ndarray:
    """Points (num, 2) on an ellipse arc; angle 90 is the top (y points down)."""
    a = np.deg2rad(np.linspace(start_deg, stop_deg, num))
    return np.stack([cx + rx * np.cos(a), cy - ry * np.sin(a)], axis=1)


def _bezier(p0, p1, p2, num=8) -> np.ndarray:
    """Points (num, 2) on the quadratic Bezier curve with control points p0, p1, p2."""
    t = np.linspace(0.0, 1.0, num)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=float) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2


def _line(*points) -> np.ndarray:
    return np.asarray(points, dtype=float)


# Strokes per digit, in unit-square coordinates (x right, y down).
GLYPHS: Tuple[Tuple[np.ndarray, ...], ...] = (
    (_arc(0.5, 0.5, 0.22, 0.36, 0, 360, 20),),                                   # 0
    (_line((0.36, 0.26), (0.52, 0.12), (0.52, 0.88)),),                         # 1
    (np.concatenate([_arc(0.5, 0.32, 0.21, 0.2, 160, -30, 10),
                     _line((0.27, 0.88), (0.76, 0.88))]),),                     # 2
    (_arc(0.49, 0.3, 0.19, 0.18, 150, -90, 10),
     _arc(0.49, 0.68, 0.22, 0.2, 90, -150, 10)),                                # 3
    (_line((0.64, 0.88), (0.64, 0.12), (0.25, 0.62), (0.8, 0.62)),),            # 4
    (np.concatenate([_line((0.72, 0.12), (0.34, 0.12)),
                     _arc(0.5, 0.64, 0.23, 0.24, 150, -145, 12)]),),            # 5
    (np.concatenate([_bezier((0.68, 0.12), (0.3, 0.28), (0.28, 0.66)),
                     _arc(0.5, 0.67, 0.22, 0.21, 180, -180, 14)]),),            # 6
    (_line((0.24, 0.12), (0.76, 0.12), (0.42, 0.88)),),                         # 7
    (_arc(0.5, 0.3, 0.17, 0.18, 270, -90, 14),
     _arc(0.5, 0.68, 0.21, 0.2, 90, 450, 14)),                                  # 8
    (np.concatenate([_arc(0.5, 0.33, 0.2, 0.21, 0, 360, 14),
                     _bezier((0.7, 0.33), (0.72, 0.66), (0.46, 0.88))]),),      # 9
)

CLASSES = tuple(str(d) for d in range(10))


def _segments(strokes) -> Tuple[np.ndarray, np.ndarray]:
    """All vertices (M, 2) of a glyph and its segments as vertex-index pairs (S, 2)."""
    vertices: List[np.ndarray] = []
    pairs: List[np.ndarray] = []
    offset = 0
    for stroke in strokes:
        idx = np.arange(offset, offset + len(stroke))
        pairs.append(np.stack([idx[:-1], idx[1:]], axis=1))
        vertices.append(stroke)
        offset += len(stroke)
    return np.concatenate(vertices), np.concatenate(pairs)


def _render(vertices: np.ndarray, pairs: np.ndarray, width: np.ndarray,
            size: int) -> np.ndarray:
    """Draw polylines as anti-aliased strokes.

    Args:
        vertices: (n, M, 2) vertex positions in pixel units, per image.
        pairs: (S, 2) vertex indices of each segment.
        width: (n,) pen width in pixels.
        size: image side in pixels.

    Returns:
        Ink in [0, 1], shape (n, size, size).
    """
    centers = np.arange(size) + 0.5
    gy, gx = np.meshgrid(centers, centers, indexing="ij")
    q = np.stack([gx.ravel(), gy.ravel()], axis=1)              # (Q, 2) pixel centres
    a = vertices[:, pairs[:, 0]]                                # (n, S, 2)
    ab = vertices[:, pairs[:, 1]] - a                           # (n, S, 2)
    # Expand |q - a - t ab|^2 with matrix products instead of building the
    # (n, S, Q, 2) tensor q - a: this is the hot loop of the generator.
    q_ab = ab @ q.T                                             # (n, S, Q)
    q_a = a @ q.T
    a_ab = np.sum(a * ab, axis=-1)[..., None]                   # (n, S, 1)
    length2 = np.maximum(np.sum(ab * ab, axis=-1), 1e-12)[..., None]
    aq_ab = q_ab - a_ab                                         # (q - a) . ab
    aq2 = np.sum(q * q, axis=1) - 2.0 * q_a + np.sum(a * a, axis=-1)[..., None]
    # Parameter of the closest point on each segment, clamped to the segment.
    t = np.clip(aq_ab / length2, 0.0, 1.0)
    dist2 = aq2 - 2.0 * t * aq_ab + t * t * length2
    dist = np.sqrt(np.maximum(np.min(dist2, axis=1), 0.0))    # (n, Q)
    # One-pixel linear ramp at the pen edge: cheap anti-aliasing.
    ink = np.clip(0.5 + width[:, None] / 2 - dist, 0.0, 1.0)
    return ink.reshape(-1, size, size)


def _draw(labels: np.ndarray, size: int, noise: float, blur: float,
          rng: np.random.Generator) -> np.ndarray:
    """Images (N, 1, size, size) of the digits ``labels``; all randomness from ``rng``."""
    n = labels.shape[0]
    unit = size / 16.0                      # jitter ranges are tuned at 16x16
    angle = rng.uniform(-0.26, 0.26, n)     # about +-15 degrees
    scale = rng.uniform(0.78, 1.05, n)
    aspect = rng.uniform(0.88, 1.12, n)
    shear = rng.uniform(-0.3, 0.3, n)       # slant, as in cursive writing
    shift = rng.uniform(-1.3, 1.3, (n, 2)) * unit
    width = rng.uniform(1.2, 2.0, n) * unit
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear_m = np.zeros((n, 2, 2))
    shear_m[:, 0, 0] = shear_m[:, 1, 1] = 1.0
    shear_m[:, 0, 1] = shear
    stretch = np.zeros((n, 2, 2))
    stretch[:, 0, 0] = scale * aspect
    stretch[:, 1, 1] = scale / aspect
    affine = rotation @ shear_m @ stretch                       # (n, 2, 2)

    images = np.empty((n, size, size))
    center = size / 2.0
    for digit, strokes in enumerate(GLYPHS):
        rows = np.flatnonzero(labels == digit)
        base, pairs = _segments(strokes)
        # Independent vertex jitter makes every stroke a little wobbly.
        pts = base[None] + rng.normal(0.0, 0.025, (rows.size,) + base.shape)
        pts = (pts * size - center) @ np.swapaxes(affine[rows], 1, 2)
        pts = pts + center + shift[rows, None]
        # Chunk so each (n, S, Q) temporary stays around 16 MB.
        chunk = max(1, int(2e6 // (len(pairs) * size * size)))
        for start in range(0, rows.size, chunk):
            part = rows[start:start + chunk]
            images[part] = _render(pts[start:start + chunk], pairs, width[part], size)

    if blur > 0:
        images = ndimage.gaussian_filter(images, sigma=(0, blur * unit, blur * unit))
    images = images + noise * rng.standard_normal(images.shape)
    return np.clip(images, 0.0, 1.0)[:, None]


def synthetic_digits(num_train: int = 6000, num_test: int = 1000, size: int = 16,
                     seed: int = 0, *, noise: float = 0.05,
                     blur: float = 0.5) -> ImageDataset:
    """Generate a balanced, seeded data set of handwritten-like digits 0-9.

    Train and test sets come from independent child streams of ``seed``, so
    the test set does not change when ``num_train`` does.

    Args:
        num_train: number of training images (>= 1).
        num_test: number of test images (>= 1).
        size: image side in pixels (>= 8); jitter scales with it.
        seed: seed for ``numpy.random.SeedSequence``.
        noise: standard deviation of additive Gaussian pixel noise (>= 0).
        blur: Gaussian blur sigma in pixels at size 16 (>= 0).

    Returns:
        ImageDataset with x_train (num_train, 1, size, size) and x_test
        (num_test, 1, size, size) float64 in [0, 1] (ink is 1), int64 labels
        whose class counts differ by at most one, classes ``("0", ..., "9")``.

    Raises:
        ValueError: naming the offending argument.
    """
    num_train = check_int("num_train", num_train)
    num_test = check_int("num_test", num_test)
    size = check_int("size", size, minimum=8)
    seed = check_int("seed", seed, minimum=0)
    noise = check_float("noise", noise)
    blur = check_float("blur", blur)
    # float64 images and about three working copies while drawing and blurring them
    pixels = float(num_train + num_test) * size * size
    biggest = max((size * size, "size"), (num_train, "num_train"), (num_test, "num_test"))[1]
    check_memory(biggest, f"{num_train + num_test} images of {size}x{size}", 4 * 8 * pixels)
    train_ss, test_ss = np.random.SeedSequence(seed).spawn(2)
    splits = []
    for num, ss in ((num_train, train_ss), (num_test, test_ss)):
        rng = np.random.default_rng(ss)
        labels = balanced_labels(num, len(GLYPHS), rng)
        splits.append((_draw(labels, size, noise, blur, rng), labels))
    (x_train, y_train), (x_test, y_test) = splits
    return ImageDataset(x_train, y_train, x_test, y_test, CLASSES)
