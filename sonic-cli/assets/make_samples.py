#!/usr/bin/env python3
"""Writes the sample inputs the README's first command animates:

- portrait.png: a 512x640 portrait drawn here from shapes (no photograph), the face inside
  `sonic animate`'s default face box (the middle half of the width, 15%-75% of the height);
- speech.wav: about three seconds of speech synthesised by espeak-ng (22.05 kHz mono).

    python sonic-cli/assets/make_samples.py   # needs Pillow and the espeak-ng program
"""

import subprocess
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent
W, H = 512, 640
TEXT = "Hello! This portrait was drawn by a script, and now it can speak."


def portrait():
    img = Image.new("RGB", (W, H))
    d = ImageDraw.Draw(img)
    for y in range(H):  # a soft vertical backdrop gradient
        t = y / H
        d.line([(0, y), (W, y)], fill=(int(70 + 60 * t), int(110 + 40 * t), int(160 - 30 * t)))
    d.ellipse([96, 470, 416, 760], fill=(60, 70, 120))  # shoulders
    d.rectangle([220, 400, 292, 500], fill=(224, 172, 140))  # neck
    d.ellipse([150, 70, 362, 250], fill=(70, 45, 30))  # hair
    d.ellipse([156, 110, 356, 430], fill=(236, 188, 152))  # face
    d.chord([150, 70, 362, 260], 180, 360, fill=(70, 45, 30))  # fringe
    for cx in (215, 297):
        d.ellipse([cx - 24, 230, cx + 24, 262], fill=(250, 250, 250))  # eye whites
        d.ellipse([cx - 11, 235, cx + 11, 257], fill=(60, 100, 60))  # irises
        d.ellipse([cx - 5, 241, cx + 5, 251], fill=(20, 20, 20))  # pupils
        d.arc([cx - 30, 205, cx + 30, 235], 200, 340, fill=(70, 45, 30), width=6)  # brows
    d.polygon([(256, 265), (240, 320), (272, 320)], fill=(214, 160, 128))  # nose
    d.chord([212, 345, 300, 395], 0, 180, fill=(170, 60, 70))  # mouth
    d.ellipse([176, 300, 216, 330], fill=(240, 160, 150))  # cheeks
    d.ellipse([296, 300, 336, 330], fill=(240, 160, 150))
    img.filter(ImageFilter.GaussianBlur(1.2)).save(OUT / "portrait.png", optimize=True)


def speech():
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(OUT / "speech.wav"), TEXT], check=True)


if __name__ == "__main__":
    portrait()
    speech()
