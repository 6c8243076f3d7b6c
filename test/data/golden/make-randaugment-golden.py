#!/usr/bin/env python3
"""Writes randaugment.json.gz: Pillow 9's outputs for the pixel operations of imgaug's RandAugment.

imgaug is not packaged for Debian, so this script calls Pillow the way imgaug's `pillike` module
does (same enhance classes, filters, and AFFINE transforms with imgaug's float32 matrices) on two
generated frames. Run with Debian's python3 after `apt-get install python3-pil python3-numpy`:
    /usr/bin/python3 test/data/golden/make-randaugment-golden.py
"""
import base64
import gzip
import json
import os

import numpy as np
import PIL
from PIL import Image, ImageEnhance, ImageFilter, ImageOps


def frames():
    rng = np.random.RandomState(7)
    noisy = rng.randint(0, 256, size=(29, 37, 3)).astype(np.uint8)
    ys, xs = np.mgrid[0:30, 0:40]
    smooth = np.stack([40 + 3 * xs, 60 + 4 * ys, 100 + (xs * ys) % 80], axis=-1)
    smooth = (smooth + rng.randint(0, 9, size=smooth.shape)).clip(0, 255).astype(np.uint8)
    return {"noisy": noisy, "smooth": smooth}


def affine_data(width, height, rotate=0.0, shear_x=0.0, shear_y=0.0, tx=0.0, ty=0.0, center=(0.0, 0.0)):
    # imgaug 0.4 pillike: float32 matrices, rotation negated, shear entered as tanh(angle).
    cx, cy = width * center[0], height * center[1]
    r, sx, sy = np.deg2rad([rotate, shear_x, shear_y])
    r = -r

    def m(rows):
        return np.array(rows, dtype=np.float32)

    chain = [
        m([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]]),
        m([[np.cos(r), np.sin(r), 0], [-np.sin(r), np.cos(r), 0], [0, 0, 1]]),
        m([[1, np.tanh(sx), 0], [np.tanh(sy), 1, 0], [0, 0, 1]]),
        m([[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        m([[1, 0, tx], [0, 1, ty], [0, 0, 1]]),
        m([[1, 0, cx], [0, 1, cy], [0, 0, 1]]),
    ]
    total = m([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    for part in chain:
        total = np.matmul(part, total)
    return np.linalg.inv(total)[:2, :].flat


def cases(image):
    pil = Image.fromarray(image)
    h, w = image.shape[:2]
    out = []

    def add(name, params, result):
        out.append({"op": name, **params, "data": base64.b64encode(np.asarray(result, dtype=np.uint8).tobytes()).decode()})

    add("autocontrast", {}, ImageOps.autocontrast(pil, cutoff=0))
    add("equalize", {}, ImageOps.equalize(pil))
    add("invert", {}, ImageOps.invert(pil))
    for bits in (7, 4, 1):
        add("posterize", {"bits": bits}, ImageOps.posterize(pil, bits))
    for threshold in (197, 128, 256):
        add("solarize", {"threshold": threshold}, ImageOps.solarize(pil, threshold))
    for name, cls in (("color", ImageEnhance.Color), ("contrast", ImageEnhance.Contrast),
                      ("brightness", ImageEnhance.Brightness), ("sharpness", ImageEnhance.Sharpness)):
        for factor in (1.21, 0.79, 1.9, 0.1):
            add(name, {"factor": factor}, cls(pil).enhance(factor))
    add("blur", {}, pil.filter(ImageFilter.BLUR))
    add("smooth", {}, pil.filter(ImageFilter.SMOOTH))
    fill = (128, 128, 128)
    for degrees in (7.0, -7.0, 30.0):
        data = affine_data(w, h, rotate=degrees, center=(0.5, 0.5))
        add("rotate", {"degrees": degrees}, pil.transform(pil.size, Image.AFFINE, data, fillcolor=fill))
    shear = 7 * np.rad2deg(0.3) / 30
    for degrees in (shear, -shear):
        add("shear-x", {"degrees": degrees}, pil.transform(pil.size, Image.AFFINE, affine_data(w, h, shear_x=degrees), fillcolor=fill))
        add("shear-y", {"degrees": degrees}, pil.transform(pil.size, Image.AFFINE, affine_data(w, h, shear_y=degrees), fillcolor=fill))
    fraction = 7 * 0.33 / 30
    for f in (fraction, -fraction):
        add("translate-x", {"fraction": f}, pil.transform(pil.size, Image.AFFINE, affine_data(w, h, tx=f * w), fillcolor=fill))
        add("translate-y", {"fraction": f}, pil.transform(pil.size, Image.AFFINE, affine_data(w, h, ty=f * h), fillcolor=fill))
    return out


def main():
    result = {"pillow": PIL.__version__, "numpy": np.__version__, "cval": 128, "frames": []}
    for name, image in frames().items():
        h, w = image.shape[:2]
        result["frames"].append({
            "name": name, "width": w, "height": h,
            "input": base64.b64encode(image.tobytes()).decode(),
            "cases": cases(image),
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "randaugment.json.gz")
    with gzip.open(path + ".tmp", "wt") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)
    print("wrote", path)


if __name__ == "__main__":
    main()
