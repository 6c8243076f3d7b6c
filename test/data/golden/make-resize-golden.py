#!/usr/bin/env python3
"""Writes resize.json.gz: OpenCV's cv2.resize(INTER_LINEAR) on uint8 RGB frames, as mmcv.imresize
calls it in mmaction2's Resize and RandomResizedCrop (and imgaug's KeepSizeByResize).

Run with Debian's python3 after `apt-get install python3-opencv` (OpenCV 4.6):
    /usr/bin/python3 test/data/golden/make-resize-golden.py
"""
import base64
import gzip
import json
import os

import cv2
import numpy as np


def main():
    rng = np.random.RandomState(11)
    cases = []
    # (source width, height) -> list of (target width, height): down- and upscales, odd ratios, rows
    # shorter than one SIMD block, an exact 2x downscale (OpenCV hands it to INTER_AREA).
    plan = [
        ((37, 29), [(16, 16), (24, 20), (74, 58), (19, 15), (36, 28), (111, 87), (1, 3), (2, 9), (5, 4), (6, 7)]),
        ((64, 48), [(32, 24), (50, 50), (63, 47), (85, 64), (131, 97)]),
        ((151, 113), [(114, 86), (96, 96)]),
        ((180, 131), [(97, 160)]),
        ((7, 5), [(11, 9), (3, 3)]),
    ]
    for (w, h), targets in plan:
        noise = rng.randint(0, 256, size=(h, w, 3)).astype(np.uint8)
        ys, xs = np.mgrid[0:h, 0:w]
        smooth = np.stack([(xs * 255) // max(w - 1, 1), (ys * 255) // max(h - 1, 1), (xs + ys) % 256], axis=-1).astype(np.uint8)
        for name, image in (("noise", noise), ("smooth", smooth)):
            for tw, th in targets:
                out = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR)
                cases.append({
                    "name": name, "width": w, "height": h, "targetWidth": tw, "targetHeight": th,
                    "input": base64.b64encode(image.tobytes()).decode(),
                    "output": base64.b64encode(out.tobytes()).decode(),
                })
    result = {"opencv": cv2.__version__, "cases": cases}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resize.json.gz")
    with gzip.open(path + ".tmp", "wt") as f:
        json.dump(result, f)
    os.replace(path + ".tmp", path)
    print("wrote", path, len(cases), "cases")


if __name__ == "__main__":
    main()
