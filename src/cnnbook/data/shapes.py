"""Generated image sets that need no download: coloured shapes for classification, and for segmentation.

Each image shows one shape (classification) or a few shapes (segmentation) with a random colour,
size, position, rotation and aspect ratio, on a random background with a colour gradient, thin
distractor strokes and dots, and pixel noise. Colour, size and position do not depend on the class, so
a classifier has to recognise the *outline*: a linear model on the pixels does clearly worse than a
small CNN, which is what the chapters need to show architecture choices.

Everything is deterministic given the seed (NumPy's ``default_rng``), pure NumPy, and returns uint8
arrays (N x C x H x W), so that a few thousand images cost a few megabytes.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["SHAPE_CLASSES", "SEGMENTATION_CLASSES", "shape_masks", "make_shapes", "make_segmentation"]



# ---- the shapes, as implicit functions in the shape's own frame (radius 1, centred at 0) ---------------
def _regular_polygon(sides: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    angles = 2 * np.pi * np.arange(sides) / sides

    def inside(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        # A point is inside when its projection on every edge normal is within the apothem cos(pi/n).
        proj = u[..., None] * np.cos(angles) + v[..., None] * np.sin(angles)
        return proj.max(axis=-1) <= np.cos(np.pi / sides)

    return inside


def _circle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u**2 + v**2 <= 1.0


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    arm = 0.3
    return ((np.abs(u) <= arm) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= arm) & (np.abs(u) <= 1.0))


def _star(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    # Five points: the radius swings between 0.4 (between the points) and 1.0 (at the tips).
    rho, phi = np.hypot(u, v), np.arctan2(v, u)
    return rho <= 0.4 + 0.6 * ((1 + np.cos(5 * phi)) / 2) ** 2


def _ring(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    rho2 = u**2 + v**2
    return (rho2 <= 1.0) & (rho2 >= 0.55**2)


def _crescent(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return (u**2 + v**2 <= 1.0) & ((u - 0.55) ** 2 + v**2 > 0.8**2)


def _heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x, y = 1.15 * u, 1.15 * v + 0.15
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def _arrow(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    shaft = (u >= -1.0) & (u <= 0.15) & (np.abs(v) <= 0.2)
    head = (u >= 0.15) & (u <= 1.0) & (np.abs(v) <= 0.75 * (1.0 - u) / 0.85)
    return shaft | head


def _diamond(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.abs(u) + np.abs(v) / 0.55 <= 1.0


_SHAPES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _circle,
    "square": _regular_polygon(4),
    "triangle": _regular_polygon(3),
    "cross": _cross,
    "star": _star,
    "ring": _ring,
    "crescent": _crescent,
    "heart": _heart,
    "arrow": _arrow,
    "diamond": _diamond,
}
SHAPE_CLASSES: list[str] = list(_SHAPES)
SEGMENTATION_CLASSES: list[str] = ["background", "circle", "square", "triangle"]


# ---- rendering ---------------------------------------------------------------------------------------
def _grid(size: int, supersample: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-1, 1] of a (size*supersample)^2 grid."""
    n = size * supersample
    t = (np.arange(n, dtype=np.float32) + 0.5) / n * 2 - 1
    y, x = np.meshgrid(t, t, indexing="ij")
    return x, y


def _downsample(a: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks of the last two axes (anti-aliasing)."""
    *lead, h, w = a.shape
    return a.reshape(*lead, h // factor, factor, w // factor, factor).mean(axis=(-3, -1))


def shape_masks(
    labels: np.ndarray, size: int, rng: np.random.Generator, supersample: int = 2,
    radius: tuple[float, float] = (0.4, 0.7),
) -> np.ndarray:
    """Soft masks (N x size x size, values in [0, 1]) of one randomly placed shape per label."""
    n = len(labels)
    r = rng.uniform(*radius, n).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    aspect = rng.uniform(0.85, 1.15, n).astype(np.float32)
    limit = np.maximum(1.0 - 0.8 * r, 0.0)  # keep most of the shape inside the frame
    cx = rng.uniform(-1, 1, n).astype(np.float32) * limit
    cy = rng.uniform(-1, 1, n).astype(np.float32) * limit
    x, y = _grid(size, supersample)
    dx, dy = x[None] - cx[:, None, None], y[None] - cy[:, None, None]
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = (dx * cos + dy * sin) / (r * aspect)[:, None, None]
    v = (-dx * sin + dy * cos) / (r / aspect)[:, None, None]
    masks = np.zeros((n, *x.shape), dtype=np.float32)
    for index, name in enumerate(SHAPE_CLASSES):
        rows = np.flatnonzero(labels == index)
        if rows.size:
            masks[rows] = _SHAPES[name](u[rows], v[rows])
    return _downsample(masks, supersample)


def _background(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random colour plus a linear gradient (N x 3 x size x size, float in [0, 1])."""
    base = rng.uniform(0.0, 1.0, (n, 3, 1, 1)).astype(np.float32)
    slope = rng.uniform(-0.25, 0.25, (n, 3, 2)).astype(np.float32)
    x, y = _grid(size, 1)
    return base + slope[..., 0, None, None] * x + slope[..., 1, None, None] * y


def _clutter(images: np.ndarray, rng: np.random.Generator, strokes: int = 3, dots: int = 3) -> None:
    """Paint thin random strokes and small dots of random colours onto ``images`` (in place)."""
    n, _, size, _ = images.shape
    x, y = _grid(size, 1)
    pixel = 2.0 / size
    for _ in range(strokes):
        p0, p1 = rng.uniform(-1, 1, (2, n, 2)).astype(np.float32)
        d = p1 - p0
        t = ((x[None] - p0[:, 0, None, None]) * d[:, 0, None, None] + (y[None] - p0[:, 1, None, None]) * d[:, 1, None, None])
        t = np.clip(t / np.maximum((d**2).sum(1), 1e-6)[:, None, None], 0, 1)
        dist = np.hypot(x[None] - p0[:, 0, None, None] - t * d[:, 0, None, None],
                        y[None] - p0[:, 1, None, None] - t * d[:, 1, None, None])
        on = rng.uniform(0, 1, n) < 0.7  # not every image gets every stroke
        alpha = (np.clip(1.0 - dist / (0.6 * pixel), 0, 1) * on[:, None, None])[:, None]
        colour = rng.uniform(0, 1, (n, 3, 1, 1)).astype(np.float32)
        images *= 1 - alpha
        images += alpha * colour
    for _ in range(dots):
        c = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
        rad = rng.uniform(1.0, 2.0, n).astype(np.float32) * pixel
        on = rng.uniform(0, 1, n) < 0.6
        inside = (np.hypot(x[None] - c[:, 0, None, None], y[None] - c[:, 1, None, None]) <= rad[:, None, None]) & on[:, None, None]
        colour = rng.uniform(0, 1, (n, 3, 1, 1)).astype(np.float32)
        images[:] = np.where(inside[:, None], colour, images)


def _foreground_colours(background: np.ndarray, rng: np.random.Generator, min_distance: float = 0.45) -> np.ndarray:
    """One colour per image, redrawn until it differs enough from the mean background colour."""
    n = len(background)
    mean_bg = background.mean(axis=(2, 3))
    colours = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    for _ in range(50):
        bad = np.linalg.norm(colours - mean_bg, axis=1) < min_distance
        bad |= np.abs(_luminance(colours) - _luminance(mean_bg)) < 0.2  # stays visible in grey
        if not bad.any():
            break
        colours[bad] = rng.uniform(0, 1, (int(bad.sum()), 3))
    return colours[:, :, None, None]


def _luminance(rgb: np.ndarray) -> np.ndarray:
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return np.tensordot(rgb, weights, axes=([1], [0]))


def _finish(images: np.ndarray, rng: np.random.Generator, channels: int, noise: float) -> np.ndarray:
    """Add pixel noise, convert to grey if asked, quantise to uint8."""
    images = images + rng.normal(0, noise, images.shape).astype(np.float32)
    if channels == 1:
        images = _luminance(images)[:, None]
    elif channels != 3:
        raise ValueError(f"channels must be 1 (grey) or 3 (colour); got {channels}.")
    return (np.clip(images, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_shapes(
    n: int, image_size: int = 32, seed: int = 0, channels: int = 3, noise: float = 0.06, chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of one shape each and their labels (indices into ``SHAPE_CLASSES``).

    Returns uint8 images of shape ``n x channels x image_size x image_size`` and int64 labels, balanced
    over the 10 classes and shuffled. The same ``seed`` gives the same arrays.
    """
    if n < 1 or image_size < 8:
        raise ValueError(f"need n >= 1 and image_size >= 8; got n={n}, image_size={image_size}.")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_CLASSES)).astype(np.int64)
    images = np.empty((n, channels, image_size, image_size), dtype=np.uint8)
    for start in range(0, n, chunk):  # bounded memory
        part = labels[start:start + chunk]
        canvas = _background(len(part), image_size, rng)
        _clutter(canvas, rng)
        mask = shape_masks(part, image_size, rng)[:, None]
        colour = _foreground_colours(canvas, rng)
        canvas = canvas * (1 - mask) + colour * mask
        images[start:start + chunk] = _finish(canvas, rng, channels, noise)
    return images, labels


def make_segmentation(
    n: int, image_size: int = 64, seed: int = 0, channels: int = 3, max_shapes: int = 3, noise: float = 0.05,
    chunk: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images with 1 to ``max_shapes`` shapes each and their per-pixel masks.

    Masks hold the index of ``SEGMENTATION_CLASSES`` of every pixel (0 = background, then circle,
    square, triangle; a later shape covers an earlier one). Returns uint8 images
    ``n x channels x image_size x image_size`` and int64 masks ``n x image_size x image_size``.
    """
    if n < 1 or image_size < 16:
        raise ValueError(f"need n >= 1 and image_size >= 16; got n={n}, image_size={image_size}.")
    rng = np.random.default_rng(seed)
    images = np.empty((n, channels, image_size, image_size), dtype=np.uint8)
    masks = np.zeros((n, image_size, image_size), dtype=np.int64)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        canvas = _background(m, image_size, rng)
        _clutter(canvas, rng, strokes=4, dots=4)
        target = np.zeros((m, image_size, image_size), dtype=np.int64)
        count = rng.integers(1, max_shapes + 1, m)
        for k in range(max_shapes):
            kind = rng.integers(1, len(SEGMENTATION_CLASSES), m)  # 1..3
            shape_index = np.array([SHAPE_CLASSES.index(SEGMENTATION_CLASSES[c]) for c in kind])
            soft = shape_masks(shape_index, image_size, rng, radius=(0.15, 0.35))
            colour = _foreground_colours(canvas, rng)
            drawn = (k < count)[:, None, None]
            alpha = (soft * drawn)[:, None]
            canvas = canvas * (1 - alpha) + colour * alpha
            target = np.where((soft >= 0.5) & drawn, kind[:, None, None], target)
        images[start:start + m] = _finish(canvas, rng, channels, noise)
        masks[start:start + m] = target
    return images, masks
