#!/usr/bin/env python3
"""Second, independent Chinese licence-plate picture renderer ("r2").

Written from scratch (Python, Pillow, numpy, ffmpeg) so that the plate reader can be judged on
pictures unlike those of the project's own renderer (src/sim/plates): other fonts, other plate
drawing, other vehicles, backgrounds cut from real footage and photographs (Debian opencv-doc
sample data), other degradations.

    python scripts/plates2/render.py --out DIR --count N --plate-free M --seed S \
        [--width 1280 --height 720] [--conditions clean,blur,...] [--jobs 2]

Writes DIR/<condition>/NNNNNN.jpg, DIR/plate_free/NNNNNN.jpg (JPEG quality 95) and DIR/labels.csv
(header: file,plate,color,split,x1,y1,x2,y2,x3,y3,x4,y4,class,width_px,condition,renderer).
Corners are TL,TR,BR,BL of the plate's outer edge, in pixels (continuous coordinates: the image
spans 0..width, 0..height). The same seed gives the same files.
"""

import argparse
import csv
import hashlib
import io
import math
import os
import subprocess
import sys
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

RENDERER = "r2"
CONDITIONS = ["clean", "blur", "dim", "noise", "night_ir", "glare", "h264", "jpeg"]
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
DIGITS = "0123456789"
ALNUM = DIGITS + LETTERS

CLASSES = [  # (class, share)
    ("blue", 0.25), ("yellow", 0.15), ("yellow_double", 0.10), ("green_small", 0.15),
    ("green_large", 0.08), ("white_police", 0.07), ("black", 0.07), ("yellow_xue", 0.05),
    ("yellow_gua", 0.08),
]

# ----------------------------------------------------------------------------------------------
# Fonts
# ----------------------------------------------------------------------------------------------

LATIN_FONTS = [  # (path, face index or family name to look for, stroke)
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf", 0, 0),
    ("/usr/share/fonts/truetype/liberation2/LiberationSans-Bold.ttf", 0, 0),
    ("/usr/share/fonts/truetype/liberation2/LiberationMono-Bold.ttf", 0, 3),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", 0, 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", "Noto Sans CJK SC", 0),
]
CJK_FONTS = [
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", "Noto Sans CJK SC", 0),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", "Noto Serif CJK SC", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "WenQuanYi Zen Hei", 2),
    ("/usr/share/fonts/truetype/arphic/ukai.ttc", "AR PL UKai CN", 3),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", "AR PL UMing CN", 4),
]
SIGN_FONTS = [f for f in CJK_FONTS]
GLYPH_PX = 160

_font_cache = {}
_glyph_cache = {}


def load_font(spec, size):
    path, face, _ = spec
    key = (path, face, size)
    if key in _font_cache:
        return _font_cache[key]
    if isinstance(face, int):
        font = ImageFont.truetype(path, size, index=face)
    else:
        font = None
        for idx in range(16):
            try:
                f = ImageFont.truetype(path, size, index=idx)
            except OSError:
                break
            if f.getname()[0] == face:
                font = f
                break
        if font is None:
            font = ImageFont.truetype(path, size, index=0)
    _font_cache[key] = font
    return font


def available(fonts):
    out = [f for f in fonts if os.path.exists(f[0])]
    if not out:
        sys.exit("render.py: none of the fonts %s is installed (apt-get install fonts-noto-cjk "
                 "fonts-dejavu-core fonts-liberation2 fonts-arphic-ukai fonts-arphic-uming "
                 "fonts-wqy-zenhei)" % [f[0] for f in fonts])
    return out


def glyph(spec, ch):
    """Tight 'L' mask of one character, rendered large."""
    key = (spec[0], spec[1], ch)
    g = _glyph_cache.get(key)
    if g is None:
        font = load_font(spec, GLYPH_PX)
        stroke = spec[2]
        im = Image.new("L", (GLYPH_PX * 2, GLYPH_PX * 2), 0)
        ImageDraw.Draw(im).text((GLYPH_PX // 3, GLYPH_PX // 3), ch, font=font, fill=255,
                                stroke_width=stroke, stroke_fill=255)
        bbox = im.getbbox()
        g = im.crop(bbox) if bbox else im
        _glyph_cache[key] = g
    return g


def put_char(canvas, spec, ch, box, color, shadow=None):
    """Draw ch stretched into box=(x0,y0,x1,y1) (canvas pixels), narrow glyphs centred."""
    x0, y0, x1, y1 = box
    bw, bh = max(1, int(round(x1 - x0))), max(1, int(round(y1 - y0)))
    g = glyph(spec, ch)
    gw, gh = g.size
    w = bw
    if gw / gh < 0.55 * (bw / bh):  # '1' and the like keep their own shape
        w = max(1, int(round(bh * gw / gh * 1.15)))
    m = g.resize((w, bh), Image.LANCZOS)
    px = int(round(x0 + (bw - w) / 2))
    py = int(round(y0))
    if shadow is not None:
        off = max(1, int(round(bh * 0.02)))
        canvas.paste(shadow, (px + off, py + off), m.point(lambda v: v * 2 // 5))
    canvas.paste(color, (px, py), m)


# ----------------------------------------------------------------------------------------------
# Plate text
# ----------------------------------------------------------------------------------------------


def pick(rng, s):
    return s[int(rng.integers(len(s)))]


def alnum_run(rng, n, max_letters=2):
    out = []
    letters = 0
    for _ in range(n):
        if letters < max_letters and rng.random() < 0.18:
            out.append(pick(rng, LETTERS))
            letters += 1
        else:
            out.append(pick(rng, DIGITS))
    return "".join(out)


def plate_text(rng, cls, double):
    p, l = pick(rng, PROVINCES), pick(rng, LETTERS)
    if cls in ("blue", "yellow", "yellow_double"):
        return p + l + alnum_run(rng, 5)
    if cls == "green_small":
        fourth = pick(rng, LETTERS) if rng.random() < 0.3 else pick(rng, DIGITS)
        return p + l + pick(rng, "DF") + fourth + "".join(pick(rng, DIGITS) for _ in range(4))
    if cls == "green_large":
        return p + l + "".join(pick(rng, DIGITS) for _ in range(5)) + pick(rng, "DF")
    if cls == "white_police":
        return p + l + alnum_run(rng, 4, 1) + "警"
    if cls == "black":
        r = rng.random()
        if r < 0.4:
            return "粤Z" + alnum_run(rng, 4, 1) + "港"
        if r < 0.7:
            return "粤Z" + alnum_run(rng, 4, 1) + "澳"
        return p + l + alnum_run(rng, 4, 1) + "领"
    if cls == "yellow_xue":
        return p + l + alnum_run(rng, 4, 1) + "学"
    if cls == "yellow_gua":
        return p + l + alnum_run(rng, 4, 1) + "挂"
    raise ValueError(cls)


def valid_plate(s):
    if len(s) == 7:
        return (s[0] in PROVINCES and s[1] in LETTERS and all(c in ALNUM for c in s[2:6])
                and (s[6] in ALNUM or s[6] in "学挂警港澳使领"))
    if len(s) == 8:
        return (s[0] in PROVINCES and s[1] in LETTERS and all(c in ALNUM for c in s[2:])
                and (s[2] in "DF" or s[7] in "DF"))
    return False


# ----------------------------------------------------------------------------------------------
# Plate drawing (millimetres, GA 36 proportions)
# ----------------------------------------------------------------------------------------------

BLUE_BG = (12, 62, 168)
YELLOW_BG = (246, 196, 18)
WHITE_BG = (236, 238, 236)
BLACK_BG = (18, 18, 20)
GREEN_BG = (84, 190, 92)
WHITE_FG = (246, 246, 246)
BLACK_FG = (14, 14, 14)
RED_FG = (200, 20, 24)


def plate_size_mm(cls, double):
    if cls in ("green_small", "green_large"):
        return 480.0, 140.0
    if double:
        return 440.0, 220.0
    return 440.0, 140.0


def draw_plate(rng, cls, text, double, k, latin, cjk):
    """RGBA picture of the plate at k px/mm; returns (image, outer size in px)."""
    wmm, hmm = plate_size_mm(cls, double)
    W, H = int(round(wmm * k)), int(round(hmm * k))
    fg, fr, bg = BLACK_FG, BLACK_FG, None
    if cls == "blue":
        bg, fg, fr = BLUE_BG, WHITE_FG, WHITE_FG
    elif cls == "black":
        bg, fg, fr = BLACK_BG, WHITE_FG, WHITE_FG
    elif cls == "white_police":
        bg = WHITE_BG
    elif cls.startswith("yellow"):
        bg = YELLOW_BG
    # colour jitter (fading, dirt, white balance)
    jit = rng.uniform(0.85, 1.08) * rng.uniform(0.96, 1.04, 3)

    def j(c):
        return tuple(int(max(0, min(255, v * s))) for v, s in zip(c, jit))

    if cls == "green_small":
        top = np.array([244, 250, 242], float)
        bot = np.array([70, 186, 88], float)
        t = np.linspace(0, 1, H)[:, None] ** 1.3
        rows = (top * (1 - t) + bot * t) * jit
        arr = np.repeat(rows[:, None, :], W, axis=1).clip(0, 255).astype(np.uint8)
        face = Image.fromarray(arr, "RGB")
    elif cls == "green_large":
        face = Image.new("RGB", (W, H), j(GREEN_BG))
        split = int(round((15.5 + 45 + 9 + 43 + 8) * k))  # yellow behind province + letter
        ImageDraw.Draw(face).rectangle([0, 0, split, H], fill=j(YELLOW_BG))
        # a soft band where the two colours meet
        band = face.crop((split - 2, 0, split + 3, H)).filter(ImageFilter.BoxBlur(2))
        face.paste(band, (split - 2, 0))
    else:
        face = Image.new("RGB", (W, H), j(bg))
    fg, fr = j(fg), j(fr)
    d = ImageDraw.Draw(face)
    # inset frame line
    inset, lw = 3.0 * k, max(1, int(round(rng.uniform(1.2, 2.0) * k)))
    d.rounded_rectangle([inset, inset, W - 1 - inset, H - 1 - inset], radius=max(1, int(7 * k)),
                        outline=fr, width=lw)
    shadow = tuple(int(c * 0.45) for c in (bg if bg else GREEN_BG))

    def cfont(ch):
        return cjk if ch in PROVINCES or ch in "学挂警港澳使领" else latin

    def ccolor(ch):
        return RED_FG if ch == "警" else fg

    if double:
        # top row: province + letter, small; bottom row: the rest, large
        top_w, top_h, gap_t = 80.0, 60.0, 25.0
        x = (wmm - (2 * top_w + gap_t)) / 2
        for ch in text[:2]:
            put_char(face, cfont(ch), ch, (x * k, 15 * k, (x + top_w) * k, (15 + top_h) * k),
                     ccolor(ch), shadow)
            x += top_w + gap_t
        rest = text[2:]
        cw, gap = 65.0, 15.0
        total = len(rest) * cw + (len(rest) - 1) * gap
        x = (wmm - total) / 2
        for ch in rest:
            put_char(face, cfont(ch), ch, (x * k, 90 * k, (x + cw) * k, 200 * k), ccolor(ch),
                     shadow)
            x += cw + gap
        rivets = [(60, 45), (380, 45)]
    else:
        n = len(text)
        if n == 8:
            widths = [45.0] + [43.0] * 7
            gaps = [9.0, 17.0] + [9.0] * 5
        else:
            widths = [45.0] * 7
            gaps = [12.0, 34.0] + [12.0] * 4
        total = sum(widths) + sum(gaps)
        x = (wmm - total) / 2
        ctop, cbot = 25.0, 115.0
        for i, ch in enumerate(text):
            put_char(face, cfont(ch), ch, (x * k, ctop * k, (x + widths[i]) * k, cbot * k),
                     ccolor(ch), shadow)
            if i == 1:  # separator dot in the middle of the wider gap
                cx, cy, r = (x + widths[i] + gaps[1] / 2) * k, (hmm / 2) * k, 5.0 * k
                d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
            if i < len(gaps):
                x += widths[i] + gaps[i]
        rivets = [(wmm * 0.25, 12.0), (wmm * 0.75, 12.0)]
    if rng.random() < 0.5:
        metal = (int(rng.integers(120, 200)),) * 3
        for (rx, ry) in rivets:
            r = 4.5 * k
            d.ellipse([rx * k - r, ry * k - r, rx * k + r, ry * k + r], fill=metal,
                      outline=tuple(int(c * 0.5) for c in metal))
    # uneven light over the plate
    lum = np.linspace(rng.uniform(0.85, 1.1), rng.uniform(0.85, 1.1), W)[None, :, None]
    arr = (np.asarray(face, np.float32) * lum).clip(0, 255).astype(np.uint8)
    face = Image.fromarray(arr, "RGB")
    mask = Image.new("L", (W, H), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, W - 1, H - 1], radius=max(1, int(5 * k)),
                                           fill=255)
    face.putalpha(mask)
    return face


# ----------------------------------------------------------------------------------------------
# Vehicles (my own flat drawings, rear or front view, in millimetres)
# ----------------------------------------------------------------------------------------------

BODY_COLOURS = [(200, 200, 205), (30, 30, 34), (235, 235, 232), (150, 20, 24), (25, 50, 120),
                (90, 95, 100), (160, 130, 90), (40, 90, 60), (220, 180, 30), (200, 90, 20)]


def gradient_fill(canvas, poly, c0, c1, y0, y1):
    """Fill polygon (canvas px) with a vertical gradient c0 (y0) -> c1 (y1)."""
    W, H = canvas.size
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    bx0, by0 = max(0, int(min(xs))), max(0, int(min(ys)))
    bx1, by1 = min(W, int(max(xs)) + 1), min(H, int(max(ys)) + 1)
    if bx1 <= bx0 or by1 <= by0:
        return
    t = ((np.arange(by0, by1) - y0) / max(1.0, (y1 - y0))).clip(0, 1)[:, None]
    rows = np.array(c0, float) * (1 - t) + np.array(c1, float) * t
    col = rows[:, None, :].clip(0, 255).astype(np.uint8)
    patch = Image.fromarray(col, "RGB").resize((bx1 - bx0, by1 - by0), Image.NEAREST)
    m = Image.new("L", (bx1 - bx0, by1 - by0), 0)
    ImageDraw.Draw(m).polygon([(x - bx0, y - by0) for x, y in poly], fill=255)
    canvas.paste(patch, (bx0, by0), m)


def shade(c, f):
    return tuple(int(max(0, min(255, v * f))) for v in c)


def draw_vehicle(rng, kind, plate_mm, k):
    """Draw a vehicle on a transparent canvas. Returns (canvas, plate box in canvas px,
    light centres in canvas px). plate_mm=(w,h) of the plate it carries (or of the blank
    plate holder)."""
    pw, ph = plate_mm
    rear = rng.random() < 0.6
    body = BODY_COLOURS[int(rng.integers(len(BODY_COLOURS)))]
    body = shade(body, rng.uniform(0.85, 1.1))
    if kind == "car":
        vw, vh = rng.uniform(1650, 1850), rng.uniform(1250, 1450)
    elif kind == "van":
        vw, vh = rng.uniform(1800, 1950), rng.uniform(1750, 2000)
    else:  # lorry / bus
        vw, vh = rng.uniform(2350, 2500), rng.uniform(2300, 2800)
    margin = 60.0
    Wc, Hc = int((vw + 2 * margin) * k), int((vh + 2 * margin + 150) * k)
    cv = Image.new("RGBA", (Wc, Hc), (0, 0, 0, 0))
    d = ImageDraw.Draw(cv)

    def P(x, y):
        return ((x + margin) * k, (y + margin) * k)

    def R(x0, y0, x1, y1):
        a, b = P(x0, y0), P(x1, y1)
        return [a[0], a[1], b[0], b[1]]

    lights = []
    # wheels/tyres peeking under the body
    tyre = (22, 22, 24)
    for x0 in (90, vw - 330):
        d.rounded_rectangle(R(x0, vh - 200, x0 + 240, vh + 120), radius=int(30 * k), fill=tyre)
    if kind in ("car", "van"):
        roof = 0.0
        shoulder = vh * (0.42 if kind == "car" else 0.38)
        inset = vw * (0.16 if kind == "car" else 0.07)
        # cabin (glass) and body shell
        gradient_fill(cv, [P(inset, roof), P(vw - inset, roof), P(vw - 40, shoulder),
                           P(40, shoulder)], shade(body, 1.15), shade(body, 0.95), P(0, 0)[1],
                      P(0, shoulder)[1])
        glass = (int(rng.integers(20, 70)),) * 3
        gi = 60
        gradient_fill(cv, [P(inset + gi, roof + gi), P(vw - inset - gi, roof + gi),
                           P(vw - 40 - gi, shoulder - 40), P(40 + gi, shoulder - 40)],
                      shade(glass, 1.6), glass, P(0, roof)[1], P(0, shoulder)[1])
        gradient_fill(cv, [P(0, shoulder), P(vw, shoulder), P(vw, vh), P(0, vh)],
                      shade(body, 1.1), shade(body, 0.7), P(0, shoulder)[1], P(0, vh)[1])
        # bumper
        bump = shade(body, 0.6) if rng.random() < 0.5 else (40, 40, 42)
        d.rounded_rectangle(R(20, vh - 330, vw - 20, vh - 40), radius=int(60 * k), fill=bump)
        plate_cy = vh - 330 - 20 - ph / 2 if rng.random() < 0.5 else vh - 190
        ly0 = shoulder + 60
        if rear:
            red = (int(rng.integers(170, 230)), 20, 24)
            for x0 in (40, vw - 360):
                d.rounded_rectangle(R(x0, ly0, x0 + 320, ly0 + 170), radius=int(25 * k),
                                    fill=red, outline=shade(red, 0.5), width=max(1, int(8 * k)))
                lights.append(P(x0 + 160, ly0 + 85))
        else:
            # grille and headlights
            gx0, gx1 = vw * 0.3, vw * 0.7
            gy0, gy1 = ly0 + 20, plate_cy - ph / 2 - 40
            d.rounded_rectangle(R(gx0, gy0, gx1, gy1), radius=int(30 * k), fill=(28, 28, 30))
            step = 35.0
            y = gy0 + step
            while y < gy1 - 10:
                d.line([P(gx0 + 15, y), P(gx1 - 15, y)], fill=(110, 110, 115),
                       width=max(1, int(10 * k)))
                y += step
            hl = (235, 235, 220)
            for x0 in (60, vw - 400):
                d.rounded_rectangle(R(x0, ly0, x0 + 340, ly0 + 130), radius=int(40 * k),
                                    fill=hl, outline=(60, 60, 60), width=max(1, int(8 * k)))
                lights.append(P(x0 + 170, ly0 + 65))
    else:
        # cargo box / bus rear
        gradient_fill(cv, [P(0, 0), P(vw, 0), P(vw, vh - 380), P(0, vh - 380)],
                      shade(body, 1.1), shade(body, 0.8), P(0, 0)[1], P(0, vh)[1])
        if rng.random() < 0.6:  # doors
            for xx in (vw / 2,):
                d.line([P(xx, 30), P(xx, vh - 400)], fill=shade(body, 0.5), width=max(1, int(12 * k)))
            for xx in (vw * 0.25, vw * 0.75):
                d.line([P(xx, 100), P(xx, vh - 480)], fill=shade(body, 0.6), width=max(1, int(25 * k)))
        else:  # bus rear window
            gradient_fill(cv, [P(150, 150), P(vw - 150, 150), P(vw - 150, vh * 0.45),
                               P(150, vh * 0.45)], (90, 100, 110), (30, 35, 40), P(0, 150)[1],
                          P(0, vh * 0.45)[1])
        # chassis, reflective stripe, lights
        d.rectangle(R(0, vh - 380, vw, vh - 40), fill=(35, 35, 37))
        sw = 100.0
        x = 0.0
        i = 0
        while x < vw:
            d.rectangle(R(x, vh - 370, min(vw, x + sw), vh - 320),
                        fill=(210, 30, 30) if i % 2 == 0 else (235, 235, 235))
            x += sw
            i += 1
        for x0 in (60, vw - 300):
            d.rectangle(R(x0, vh - 300, x0 + 240, vh - 200), fill=(200, 30, 30))
            d.rectangle(R(x0, vh - 200, x0 + 240, vh - 140), fill=(230, 150, 30))
            lights.append(P(x0 + 120, vh - 220))
        plate_cy = vh - 60 - ph / 2 - 40
    # plate holder (recess) slightly larger than the plate, plate centred horizontally
    pcx = vw / 2 + rng.uniform(-0.03, 0.03) * vw
    d.rectangle(R(pcx - pw / 2 - 15, plate_cy - ph / 2 - 15, pcx + pw / 2 + 15,
                  plate_cy + ph / 2 + 15), fill=(20, 20, 22))
    a, b = P(pcx - pw / 2, plate_cy - ph / 2)
    return cv, (a, b, pw * k, ph * k), lights


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------


def homography(src, dst):
    """3x3 matrix mapping the 4 src points onto the 4 dst points."""
    A, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        A.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        b.append(u)
        A.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b.append(v)
    h = np.linalg.solve(np.array(A, float), np.array(b, float))
    return np.append(h, 1.0).reshape(3, 3)


def apply_h(Hm, pts):
    out = []
    for x, y in pts:
        u, v, w = Hm @ np.array([x, y, 1.0])
        out.append((u / w, v / w))
    return out


def warp(img, Hm, size, resample=Image.BILINEAR):
    """Warp img with Hm (img coords -> output coords) into a picture of size; returns
    (patch, (x0, y0)): only the part of the output that img covers is computed."""
    w, h = img.size
    pts = apply_h(Hm, [(0, 0), (w, 0), (w, h), (0, h)])
    x0 = max(0, int(math.floor(min(p[0] for p in pts))) - 1)
    y0 = max(0, int(math.floor(min(p[1] for p in pts))) - 1)
    x1 = min(size[0], int(math.ceil(max(p[0] for p in pts))) + 1)
    y1 = min(size[1], int(math.ceil(max(p[1] for p in pts))) + 1)
    if x1 <= x0 or y1 <= y0:
        x0, y0, x1, y1 = 0, 0, 1, 1
    T = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
    inv = np.linalg.inv(T @ Hm)
    inv = inv / inv[2, 2]
    coeffs = tuple(inv.flatten()[:8])
    return img.transform((x1 - x0, y1 - y0), Image.PERSPECTIVE, coeffs, resample), (x0, y0)


def plate_quad(rng, W, H, aspect):
    """Target corners TL,TR,BR,BL of the plate in the scene."""
    for _ in range(200):
        w = rng.uniform(80, 240) * W / 1280.0
        h = w / aspect
        q = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        f = rng.uniform(0, 0.25)
        if rng.random() < 0.7:  # left or right side shorter (camera off to one side)
            side = [1, 2] if rng.random() < 0.5 else [0, 3]
            q[side, 1] *= (1 - f)
        else:  # top or bottom edge shorter (camera above / below)
            side = [0, 1] if rng.random() < 0.7 else [2, 3]
            q[side, 0] *= (1 - f)
        q[:, 0] += rng.uniform(-0.12, 0.12) * q[:, 1]  # shear
        th = math.radians(rng.uniform(-12, 12))
        c, s = math.cos(th), math.sin(th)
        q = q @ np.array([[c, s], [-s, c]])
        top = np.hypot(*(q[1] - q[0]))
        q *= w / top  # top edge length = w exactly
        cx = rng.uniform(10, W - 10)
        cy = rng.uniform(10, H - 10)
        q += [cx, cy]
        if q[:, 0].min() >= 10 and q[:, 0].max() <= W - 10 and q[:, 1].min() >= 10 \
                and q[:, 1].max() <= H - 10:
            return [tuple(p) for p in q]
    raise RuntimeError("no plate placement")


# ----------------------------------------------------------------------------------------------
# Backgrounds: frames of real footage and photographs shipped by Debian's opencv-doc
# ----------------------------------------------------------------------------------------------

OPENCV_DATA = "/usr/share/doc/opencv-doc/examples/data"
BG_VIDEOS = [("vtest.avi", [5, 120, 240, 360, 480, 600, 700, 790]),
             ("tree.avi", [3, 20, 40]),
             ("Megamind.avi", [30, 120, 200, 260])]
BG_STILLS = ["building.jpg", "home.jpg", "leuvenA.jpg", "leuvenB.jpg", "aero1.jpg", "aero3.jpg",
             "graf1.png", "graf3.png", "box_in_scene.png", "messi5.jpg", "stuff.jpg",
             "fruits.jpg", "rubberwhale1.png", "basketball1.png", "orange.jpg", "lena.jpg",
             "board.jpg", "right01.jpg",
             "squirrel_cls.jpg", "butterfly.jpg"]


def bg_cache_dir():
    return os.path.join(os.path.expanduser("~"), ".cache", "tianwang", "plates2-bg")


def prepare_backgrounds():
    """Extract background frames once into ~/.cache/tianwang/plates2-bg; list them (sorted)."""
    out = bg_cache_dir()
    os.makedirs(out, exist_ok=True)
    wanted = []
    for name, frames in BG_VIDEOS:
        src = os.path.join(OPENCV_DATA, name)
        if not os.path.exists(src):
            continue
        for n in frames:
            dst = os.path.join(out, "%s_%04d.png" % (os.path.splitext(name)[0], n))
            wanted.append(dst)
            if os.path.exists(dst):
                continue
            tmp = dst + ".tmp.png"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", src, "-vf",
                            "select=eq(n\\,%d)" % n, "-frames:v", "1", tmp], check=False)
            if os.path.exists(tmp) and os.path.getsize(tmp) > 0:
                os.replace(tmp, dst)
    for name in BG_STILLS:
        src = os.path.join(OPENCV_DATA, name)
        dst = os.path.join(out, "still_" + os.path.splitext(name)[0] + ".png")
        wanted.append(dst)
        if os.path.exists(src) and not os.path.exists(dst):
            Image.open(src).convert("RGB").save(dst + ".tmp.png")
            os.replace(dst + ".tmp.png", dst)
    # only the pictures named above (whatever else the cache holds), in a fixed order
    files = sorted(p for p in wanted if os.path.exists(p))
    if not files:
        sys.exit("render.py: no background pictures (is opencv-doc installed?)")
    return files


_bg_images = {}


def background(rng, paths, W, H):
    p = paths[int(rng.integers(len(paths)))]
    im = _bg_images.get(p)
    if im is None:
        im = Image.open(p).convert("RGB")
        _bg_images[p] = im
    iw, ih = im.size
    scale = max(W / iw, H / ih) * rng.uniform(1.0, 1.6)
    cw, ch = W / scale, H / scale
    x0 = rng.uniform(0, iw - cw)
    y0 = rng.uniform(0, ih - ch)
    out = im.resize((W, H), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    arr = np.asarray(out, np.float32) * rng.uniform(0.7, 1.15)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


# ----------------------------------------------------------------------------------------------
# Clutter: signs with Chinese text, stripes, poles
# ----------------------------------------------------------------------------------------------

SIGN_TEXTS = ["前方路口", "减速慢行", "禁止停车", "停车场入口", "出口", "学校区域", "注意行人",
              "京港澳高速", "收费站", "公交专用道", "限速40", "单行道", "加油站 500米", "人民路",
              "中山大道", "小心地滑", "超市", "粤菜馆", "药店", "银行", "24小时营业", "电话",
              "欢迎光临", "施工路段", "G4 京港澳", "S82 机场", "K12+300", "禁止鸣笛", "让",
              "北京东路", "新华书店", "川菜 火锅", "洗车", "停车 5元/时", "河南省郑州市",
              "广州南站", "上海虹桥", "地铁2号线", "A出口", "B2 停车场"]
SIGN_STYLES = [((20, 60, 160), (245, 245, 245)), ((20, 120, 60), (245, 245, 245)),
               ((240, 200, 10), (15, 15, 15)), ((240, 240, 240), (20, 20, 20)),
               ((190, 25, 25), (250, 250, 250)), ((40, 40, 40), (250, 200, 30))]


def draw_sign(rng, scene, style=None):
    W, H = scene.size
    if style is None:
        style = SIGN_STYLES[int(rng.integers(len(SIGN_STYLES)))]
    bgc, fgc = style
    text = SIGN_TEXTS[int(rng.integers(len(SIGN_TEXTS)))]
    if rng.random() < 0.3:
        text = text + "\n" + SIGN_TEXTS[int(rng.integers(len(SIGN_TEXTS)))]
    fs = int(rng.uniform(16, 46) * W / 1280)
    font = load_font(SIGN_FONTS[int(rng.integers(len(SIGN_FONTS)))], fs)
    tmp = ImageDraw.Draw(Image.new("L", (1, 1)))
    bb = tmp.multiline_textbbox((0, 0), text, font=font, spacing=fs // 4)
    pad = int(fs * rng.uniform(0.3, 0.8))
    sw, sh = bb[2] - bb[0] + 2 * pad, bb[3] - bb[1] + 2 * pad
    sign = Image.new("RGBA", (sw, sh), bgc + (255,))
    sd = ImageDraw.Draw(sign)
    if rng.random() < 0.6:
        sd.rectangle([3, 3, sw - 4, sh - 4], outline=fgc, width=max(1, fs // 12))
    sd.multiline_text((pad - bb[0], pad - bb[1]), text, font=font, fill=fgc, spacing=fs // 4,
                      align="center")
    sign = sign.rotate(rng.uniform(-8, 8), resample=Image.BICUBIC, expand=True)
    x = int(rng.uniform(-sw * 0.2, W - sw * 0.8))
    y = int(rng.uniform(-sh * 0.2, H - sh * 0.8))
    if rng.random() < 0.5:  # a pole under it
        px = x + sign.size[0] // 2
        ImageDraw.Draw(scene).rectangle([px - fs // 6, y + sign.size[1] // 2, px + fs // 6, H],
                                        fill=(110, 110, 115))
    scene.paste(sign, (x, y), sign)


def draw_stripes(rng, scene):
    W, H = scene.size
    d = ImageDraw.Draw(scene)
    n = int(rng.integers(3, 8))
    y0 = rng.uniform(H * 0.55, H * 0.95)
    bw = rng.uniform(25, 60)
    sl = rng.uniform(-0.5, 0.5)
    col = (230, 230, 225) if rng.random() < 0.7 else (230, 190, 30)
    x = rng.uniform(0, W * 0.5)
    for _ in range(n):
        hgt = rng.uniform(30, 90)
        d.polygon([(x, y0), (x + bw, y0), (x + bw + sl * hgt, y0 + hgt), (x + sl * hgt, y0 + hgt)],
                  fill=col)
        x += bw * rng.uniform(1.6, 2.4)


def draw_clutter(rng, scene, plate_free):
    if plate_free:
        # yellow and green signs always, plus more
        draw_sign(rng, scene, SIGN_STYLES[2])
        draw_sign(rng, scene, SIGN_STYLES[1])
        for _ in range(int(rng.integers(0, 3))):
            draw_sign(rng, scene)
        if rng.random() < 0.6:
            draw_stripes(rng, scene)
    else:
        if rng.random() < 0.5:
            draw_stripes(rng, scene)
        for _ in range(int(rng.integers(0, 3))):
            draw_sign(rng, scene)


# ----------------------------------------------------------------------------------------------
# Conditions
# ----------------------------------------------------------------------------------------------


_noise_bank = {}


def unit_noise(rng, shape):
    """Standard normal noise of shape (H, W[, 3]): a random window of a fixed per-process bank
    (same bank in every process, so the pictures stay deterministic), randomly flipped."""
    H, W = shape[0], shape[1]
    bank = _noise_bank.get((H, W))
    if bank is None:
        bank = np.random.default_rng(20240601).standard_normal((H + 97, W + 89, 4),
                                                               dtype=np.float32)
        _noise_bank[(H, W)] = bank
    oy, ox = int(rng.integers(97)), int(rng.integers(89))
    c = int(rng.integers(2))
    n = bank[oy:oy + H, ox:ox + W, c:c + 3] if len(shape) == 3 else bank[oy:oy + H, ox:ox + W, c]
    if rng.random() < 0.5:
        n = -n
    return n


def gauss_noise(rng, arr, sigma):
    """Sensor noise: part shared by the three channels (luma), part per channel."""
    luma = unit_noise(rng, arr.shape[:2])[:, :, None] * np.float32(sigma * 0.5)
    chroma = unit_noise(rng, arr.shape) * np.float32(sigma * 0.87)
    return arr + luma + chroma


def motion_blur(rng, arr, length, angle):
    n = max(2, int(round(length)))
    dx, dy = math.cos(angle), math.sin(angle)
    acc = np.zeros_like(arr)
    for i in range(n):
        t = i - (n - 1) / 2
        sx, sy = int(round(t * dx)), int(round(t * dy))
        acc += np.roll(np.roll(arr, sy, axis=0), sx, axis=1)
    return acc / n


def bloom(arr, cx, cy, radius, strength, colour=(1.0, 0.97, 0.9)):
    H, W = arr.shape[:2]
    ext = radius * 9.0  # 0.35*exp(-r2/8) is below 0.2 grey levels beyond this
    x0, x1 = max(0, int(cx - ext)), min(W, int(cx + ext) + 1)
    y0, y1 = max(0, int(cy - ext)), min(H, int(cy + ext) + 1)
    if x1 <= x0 or y1 <= y0:
        return arr
    ys = np.arange(y0, y1, dtype=np.float32)[:, None]
    xs = np.arange(x0, x1, dtype=np.float32)[None, :]
    r2 = ((xs - cx) ** 2 + (ys - cy) ** 2) / np.float32(radius * radius)
    g = np.float32(strength) * (np.exp(-r2) + np.float32(0.35) * np.exp(-r2 / np.float32(8.0)))
    arr = arr.copy()
    arr[y0:y1, x0:x1] += g[:, :, None] * np.array(colour, np.float32)
    return arr


def h264_roundtrip(rng, img, corners):
    """Encode a short moving sequence with x264 (<= 1 Mbit/s), decode, return a P-frame."""
    W, H = img.size
    base = np.asarray(img)
    vx, vy = int(rng.integers(-3, 4)), int(rng.integers(-2, 3))
    pad = 40
    padded = np.pad(base, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    nfr = 10
    frames = []
    for i in range(nfr):
        ox, oy = i * vx, i * vy  # scene content moves by (ox, oy)
        frames.append(padded[pad - oy:pad - oy + H, pad - ox:pad - ox + W])
    raw = b"".join(f.tobytes() for f in frames)
    enc = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "%dx%d" % (W, H),
         "-r", "25", "-i", "pipe:0", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "800k",
         "-maxrate", "1M", "-bufsize", "1M", "-g", "10", "-bf", "0", "-threads", "1",
         "-pix_fmt", "yuv420p", "-f", "h264", "pipe:1"],
        input=raw, stdout=subprocess.PIPE, check=True).stdout
    dec = subprocess.run(
        ["ffmpeg", "-v", "error", "-threads", "1", "-f", "h264", "-i", "pipe:0", "-f", "rawvideo",
         "-pix_fmt", "rgb24", "pipe:1"], input=enc, stdout=subprocess.PIPE, check=True).stdout
    fsz = W * H * 3
    got = len(dec) // fsz
    k = int(rng.integers(5, min(nfr, got)))  # a P-frame (frame 0 is the only I-frame)
    out = np.frombuffer(dec[k * fsz:(k + 1) * fsz], np.uint8).reshape(H, W, 3)
    if corners:
        corners = [(x + k * vx, y + k * vy) for x, y in corners]
    return Image.fromarray(out.copy(), "RGB"), corners


def apply_condition(rng, cond, img, corners, plate_mask, lights):
    W, H = img.size
    if cond == "blur" and rng.random() < 0.35:
        # rolling shutter: rows read out later are displaced sideways
        skew = rng.uniform(-0.08, 0.08)
        y0 = H / 2
        img = img.transform((W, H), Image.AFFINE, (1, skew, -skew * y0, 0, 1, 0), Image.BILINEAR)
        if plate_mask is not None:
            plate_mask = plate_mask.transform((W, H), Image.AFFINE, (1, skew, -skew * y0, 0, 1, 0),
                                              Image.BILINEAR)
        if corners:
            corners = [(x - skew * (y - y0), y) for x, y in corners]
        lights = [(x - skew * (y - y0), y) for x, y in lights]
    arr = np.asarray(img, np.float32)
    if cond == "clean":
        arr = gauss_noise(rng, arr, rng.uniform(1.0, 3.0))
    elif cond == "blur":
        arr = motion_blur(rng, arr, rng.uniform(3, 9), rng.uniform(0, math.pi))
        arr = gauss_noise(rng, arr, 2.0)
    elif cond == "dim":
        g = rng.uniform(1.8, 2.6)
        arr = 255.0 * (arr / 255.0) ** g * rng.uniform(0.25, 0.5)
        arr = arr + unit_noise(rng, arr.shape) * np.sqrt(
            np.maximum(arr, 0) * 0.6 + 9.0)
    elif cond == "noise":
        s = rng.uniform(10, 25)
        if rng.random() < 0.5:
            arr = gauss_noise(rng, arr, s)
        else:  # Poisson-like shot noise of about the same strength
            scale = (s * s) / 128.0
            arr = rng.poisson(np.maximum(arr, 0) / scale).astype(np.float32) * scale
            arr = gauss_noise(rng, arr, 3.0)
    elif cond == "night_ir":
        grey = arr @ np.array([0.299, 0.587, 0.114], np.float32)
        m = np.asarray(plate_mask, np.float32) / 255.0 if plate_mask is not None else 0.0
        lo = rng.uniform(20, 45)
        scene = lo + grey * rng.uniform(0.2, 0.4)
        # retroreflective plate: bright, characters keep their contrast
        plate = rng.uniform(110, 150) + grey * rng.uniform(0.35, 0.5)
        g = scene * (1 - m) + plate * m
        arr = np.repeat(g[:, :, None], 3, axis=2)
        for (lx, ly) in lights:
            if rng.random() < 0.8:
                arr = bloom(arr, lx, ly, rng.uniform(15, 45), rng.uniform(120, 255), (1, 1, 1))
        arr = np.asarray(Image.fromarray(arr.clip(0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(0.8)), np.float32)
        n = unit_noise(rng, arr.shape[:2]) * np.float32(rng.uniform(5, 10))
        arr = arr + n[:, :, None]
    elif cond == "glare":
        cx = sum(p[0] for p in corners) / 4 if corners else W / 2
        cy = sum(p[1] for p in corners) / 4 if corners else H / 2
        pw = math.hypot(corners[1][0] - corners[0][0], corners[1][1] - corners[0][1]) \
            if corners else 150
        for _ in range(int(rng.integers(1, 3))):
            a = rng.uniform(0, 2 * math.pi)
            dist = rng.uniform(0.5, 1.4) * pw
            arr = bloom(arr, cx + dist * math.cos(a), cy + dist * math.sin(a) * 0.6,
                        rng.uniform(0.2, 0.55) * pw, rng.uniform(150, 320))
        arr = gauss_noise(rng, arr, 2.0)
    elif cond == "jpeg":
        pass
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")
    if cond == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(15, 36)))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    elif cond == "h264":
        img, corners = h264_roundtrip(rng, img, corners)
    return img, corners


# ----------------------------------------------------------------------------------------------
# One picture
# ----------------------------------------------------------------------------------------------

FONT_LISTS = {}


def vehicle_kind(rng, cls, double):
    if double or cls in ("yellow_double", "green_large"):
        return "lorry"
    if cls in ("yellow", "yellow_gua"):
        return "lorry" if rng.random() < 0.6 else "van"
    return "van" if rng.random() < 0.25 else "car"


def affine_fit(src, dst):
    """Least-squares affine map (as a 3x3 matrix) taking src points to dst points."""
    A = np.array([[x, y, 1.0] for x, y in src])
    sol, *_ = np.linalg.lstsq(A, np.array(dst, float), rcond=None)
    return np.vstack([sol.T, [0.0, 0.0, 1.0]])


def place_vehicle(rng, scene, kind, plate_img, quad, plate_mm):
    """Draw a vehicle (with plate_img in its holder, if any) so that the plate lands on quad.
    The vehicle body follows the affine map closest to the plate's; the plate and its holder
    follow the plate's own perspective map exactly."""
    W, H = scene.size
    pw_px = math.hypot(quad[1][0] - quad[0][0], quad[1][1] - quad[0][1])
    k = max(0.08, pw_px * 1.25 / plate_mm[0])
    cv, (px, py, pw, ph), lights = draw_vehicle(rng, kind, plate_mm, k)
    src = [(px, py), (px + pw, py), (px + pw, py + ph), (px, py + ph)]
    A = affine_fit(src, quad)
    warped, at = warp(cv, A, (W, H))
    scene.paste(warped, at, warped)
    pmask = None
    if plate_img is not None:
        pim = plate_img.resize((max(1, int(round(pw))), max(1, int(round(ph)))), Image.LANCZOS)
        mg = max(2, int(round(14 * k)))
        holder = Image.new("RGBA", (pim.size[0] + 2 * mg, pim.size[1] + 2 * mg), (20, 20, 22, 255))
        holder.alpha_composite(pim, (mg, mg))
        src = [(mg, mg), (mg + pim.size[0], mg), (mg + pim.size[0], mg + pim.size[1]),
               (mg, mg + pim.size[1])]
        Hm = homography(src, quad)
        warped, at = warp(holder, Hm, (W, H))
        scene.paste(warped, at, warped)
        m = Image.new("L", holder.size, 0)
        ImageDraw.Draw(m).rectangle([mg, mg, mg + pim.size[0] - 1, mg + pim.size[1] - 1], fill=255)
        mpatch, at = warp(m, Hm, (W, H))
        pmask = Image.new("L", (W, H), 0)
        pmask.paste(mpatch, at)
    return pmask, apply_h(A, lights)


def render_one(job):
    (idx, seed, cond, plate_free, W, H, rel, outdir, bgs) = job
    digest = hashlib.sha256(("%d|%s|%d|%d" % (seed, cond, idx, plate_free)).encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    latin_fonts, cjk_fonts = FONT_LISTS.get("l") or available(LATIN_FONTS), \
        FONT_LISTS.get("c") or available(CJK_FONTS)
    FONT_LISTS["l"], FONT_LISTS["c"] = latin_fonts, cjk_fonts
    scene = background(rng, bgs, W, H)
    draw_clutter(rng, scene, plate_free)
    corners, row = None, None
    lights = []
    pmask = None
    if plate_free:
        for _ in range(int(rng.integers(1, 3))):  # vehicles with an empty plate holder
            kind = ["car", "van", "lorry"][int(rng.integers(3))]
            quad = plate_quad(rng, W, H, 440 / 140)
            _, l = place_vehicle(rng, scene, kind, None, quad, (440.0, 140.0))
            lights += l
        row = [rel, "", "", "none", "", "", "", "", "", "", "", "", "", "", cond, RENDERER]
    else:
        r = rng.random()
        acc = 0.0
        cls = CLASSES[-1][0]
        for c, share in CLASSES:
            acc += share
            if r < acc:
                cls = c
                break
        double = cls == "yellow_double" or (cls == "yellow_gua" and rng.random() < 0.55)
        text = plate_text(rng, cls, double)
        assert valid_plate(text), text
        color = {"blue": "blue", "black": "black", "white_police": "white",
                 "green_small": "green", "green_large": "green"}.get(cls, "yellow")
        latin = latin_fonts[int(rng.integers(len(latin_fonts)))]
        cjk = cjk_fonts[int(rng.integers(len(cjk_fonts)))]
        wmm, hmm = plate_size_mm(cls, double)
        quad = plate_quad(rng, W, H, wmm / hmm)
        pw_px = quad[1][0] - quad[0][0]
        k = max(0.3, min(1.4, abs(pw_px) * 2.0 / wmm))
        plate = draw_plate(rng, cls, text, double, k, latin, cjk)
        if rng.random() < 0.15:  # another, plate-less, vehicle somewhere behind
            q2 = plate_quad(rng, W, H, 440 / 140)
            place_vehicle(rng, scene, ["car", "van", "lorry"][int(rng.integers(3))], None, q2,
                          (440.0, 140.0))
        pmask, lights = place_vehicle(rng, scene, vehicle_kind(rng, cls, double), plate, quad,
                                      (wmm, hmm))
        corners = quad
        row = [rel, text, color, cond]
    img, corners = apply_condition(rng, cond, scene, corners, pmask, lights)
    path = os.path.join(outdir, rel)
    img.save(path, "JPEG", quality=95)
    if not plate_free:
        width_px = int(round(math.hypot(corners[1][0] - corners[0][0],
                                        corners[1][1] - corners[0][1])))
        flat = []
        for x, y in corners:
            flat += ["%.1f" % x, "%.1f" % y]
        row = row + flat + [cls, str(width_px), cond, RENDERER]
    return idx, row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, required=True, help="pictures with a plate")
    ap.add_argument("--plate-free", type=int, default=0, help="pictures without a plate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args()
    conds = [c.strip() for c in a.conditions.split(",") if c.strip()]
    for c in conds:
        if c not in CONDITIONS:
            sys.exit("render.py: unknown condition %r (known: %s)" % (c, ",".join(CONDITIONS)))
    if a.width < 320 or a.height < 200:
        sys.exit("render.py: picture too small")
    available(LATIN_FONTS)
    available(CJK_FONTS)
    bgs = prepare_backgrounds()
    os.makedirs(a.out, exist_ok=True)
    for c in conds:
        os.makedirs(os.path.join(a.out, c), exist_ok=True)
    if a.plate_free:
        os.makedirs(os.path.join(a.out, "plate_free"), exist_ok=True)
    jobs = []
    n = 0
    per = [a.count // len(conds) + (1 if i < a.count % len(conds) else 0) for i in range(len(conds))]
    for c, m in zip(conds, per):
        for i in range(m):
            jobs.append((n, a.seed, c, 0, a.width, a.height, "%s/%06d.jpg" % (c, i), a.out, bgs))
            n += 1
    for j in range(a.plate_free):
        c = conds[j % len(conds)]
        jobs.append((n, a.seed, c, 1, a.width, a.height, "plate_free/%06d.jpg" % j, a.out, bgs))
        n += 1
    rows = [None] * len(jobs)
    if a.jobs > 1:
        with Pool(a.jobs) as pool:
            for idx, row in pool.imap_unordered(render_one, jobs, chunksize=4):
                rows[idx] = row
    else:
        for job in jobs:
            idx, row = render_one(job)
            rows[idx] = row
    with open(os.path.join(a.out, "labels.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file", "plate", "color", "split", "x1", "y1", "x2", "y2", "x3", "y3", "x4",
                    "y4", "class", "width_px", "condition", "renderer"])
        for r in rows:
            w.writerow(r)
    print("render.py: %d pictures (%d plate-free) in %s" % (len(jobs), a.plate_free, a.out),
          file=sys.stderr)


if __name__ == "__main__":
    main()
