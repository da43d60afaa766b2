#!/usr/bin/env python3
"""Writes the demo city's map (camera-configs/demo/map/*.geojson) from the checkpoint positions.

Radial roads run out from Erqi square through every checkpoint (inner ring at ~600 m, middle ring
at ~1500 m), so each checkpoint stands on its road looking outward along it; ring roads at 400 m,
1000 m and 2000 m join them; two streets inside the inner ring carry the demo's unit entrances.
Re-run after moving a checkpoint: `python3 scripts/demo_map.py`. Deterministic.
"""
import json
import math
import os
import re
import tomllib

ROOT = os.path.join(os.path.dirname(__file__), "..", "camera-configs", "demo")
CENTRE = (113.665, 34.757)
KX = 111_320.0 * math.cos(math.radians(CENTRE[1]))  # metres per degree of longitude (sphere, fine here)
KY = 110_950.0


def xy(lon, lat):
    return ((lon - CENTRE[0]) * KX, (lat - CENTRE[1]) * KY)


def ll(x, y):
    return [round(CENTRE[0] + x / KX, 7), round(CENTRE[1] + y / KY, 7)]


def polar(r, bearing):
    b = math.radians(bearing)
    return (r * math.sin(b), r * math.cos(b))


def bearing_of(x, y):
    return math.degrees(math.atan2(x, y)) % 360.0


def checkpoints():
    with open(os.path.join(ROOT, "checkpoints.toml"), "rb") as f:
        cams = tomllib.load(f)["camera"]
    out = []
    for c in cams:
        x, y = xy(c["lon"], c["lat"])
        out.append((c["id"], c["name"], math.hypot(x, y), bearing_of(x, y)))
    return out


def feature(fid, coords, props):
    return {"type": "Feature", "id": fid, "geometry": {"type": "LineString", "coordinates": coords},
            "properties": dict(id=fid, **props)}


def main():
    cps = checkpoints()
    inner = [c for c in cps if "inner" in c[1]]
    middle = [c for c in cps if "middle" in c[1]]
    roads = []
    # Chords inside the 400 m ring road carrying the entrances: 德化街 (north-south) and
    # 解放路 (east-south-east), as bearings of their end points on the ring road.
    chords = {"德化街": (50.0, 130.0), "解放路": (250.0, 160.0)}
    ring_extra = {400.0: [a for ends in chords.values() for a in ends]}
    inner_angles = [c[3] for c in inner]
    middle_angles = [c[3] for c in middle]
    ring_extra[1000.0] = inner_angles + middle_angles
    ring_extra[2000.0] = middle_angles
    names = {400.0: ("二七广场环路", "secondary"), 1000.0: ("一环路", "trunk"), 2000.0: ("二环路", "trunk")}
    for r, (name, cls) in names.items():
        angles = sorted(set([a * 5.0 for a in range(72)] + [round(a, 6) for a in ring_extra.get(r, [])]))
        coords = [ll(*polar(r, a)) for a in angles]
        coords.append(coords[0])
        roads.append(feature(f"ring-road-{int(r)}", coords, {"name": name, "highway": cls, "oneway": "no"}))
    for i, (cid, _, rad, a) in enumerate(inner):
        coords = [ll(0.0, 0.0), ll(*polar(rad, a)), ll(*polar(1000.0, a))]
        roads.append(feature(f"radial-inner-{i + 1}", coords, {"name": f"放射路{i + 1}", "highway": "primary", "oneway": "no"}))
    for i, (cid, _, rad, a) in enumerate(middle):
        coords = [ll(*polar(1000.0, a)), ll(*polar(rad, a)), ll(*polar(2600.0, a))]
        roads.append(feature(f"radial-middle-{i + 1}", coords, {"name": f"外放射路{i + 1}", "highway": "primary", "oneway": "no"}))
    for name, (a, b) in chords.items():
        coords = [ll(*polar(400.0, a)), ll(*polar(400.0, b))]
        roads.append(feature(f"street-{name}", coords, {"name": name, "highway": "tertiary", "oneway": "no"}))
    with open(os.path.join(ROOT, "map", "roads.geojson"), "w") as f:
        json.dump({"type": "FeatureCollection", "features": roads}, f, ensure_ascii=False, indent=1)
        f.write("\n")

    # Entrances: where the entrance cameras stand, facing the chord street beside them.
    with open(os.path.join(ROOT, "entrances.toml"), "rb") as f:
        cams = tomllib.load(f)["camera"]
    units = {}
    for c in cams:
        unit = re.sub(r" entrance.*$", "", c["name"])
        units.setdefault(unit, c)
    roads_of = {"德化街1号院": "德化街", "工商银行二七支行": "解放路"}
    ents = []
    for i, (unit, c) in enumerate(sorted(units.items())):
        ents.append({"type": "Feature", "id": f"entrance-{i + 1}",
                     "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]},
                     "properties": {"id": f"entrance-{i + 1}", "name": unit, "road": roads_of.get(unit)}})
    with open(os.path.join(ROOT, "map", "entrances.geojson"), "w") as f:
        json.dump({"type": "FeatureCollection", "features": ents}, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
