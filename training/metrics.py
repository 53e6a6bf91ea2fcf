"""Image quality metrics on uint8 images (NumPy/OpenCV)."""

from __future__ import annotations

import numpy as np

__all__ = ["psnr_u8", "ssim_u8", "rgb_to_y"]


def psnr_u8(pred: np.ndarray, target: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shape images (uint8 or float on a 0..``peak`` scale).

    Identical images give +inf.
    """
    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {target.shape}")
    mse = float(np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def ssim_u8(pred: np.ndarray, target: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03).

    Args:
        pred, target: (H, W) or (H, W, C) images on a 0..``peak`` scale; channels averaged.
    """
    import cv2

    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {target.shape}")
    x = pred.astype(np.float64)
    y = target.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma (16..235) of an (H, W, 3) RGB image on a 0..255 scale, as float64."""
    x = img.astype(np.float64)
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
