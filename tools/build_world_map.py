"""Build the console's offline world map: Natural Earth land outlines (TopoJSON) → one SVG path.

Input: ``land-110m.json`` from the npm package ``world-atlas@2`` (ISC licence; the data is Natural Earth, public
domain). Get it with ``cd /tmp && npm pack world-atlas@2 && tar xzf world-atlas-2.*.tgz`` and run::

    python tools/build_world_map.py /tmp/package/land-110m.json

The projection is equirectangular on a 360 × 180 view box (x = lon + 180, y = 90 - lat), so the console places a
city's marker with the same two additions; the polar strip south of 60°S (Antarctica) is cut to keep the map
compact. Output: ``api/static/map/land.svg`` (a standalone file) and ``api/templates/console/_land_path.txt``
(the path data the console inlines).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIN_LAT = -60.0  # the view box stops here


def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring(arcs: list[list[tuple[float, float]]], indexes: list[int]) -> list[tuple[float, float]]:
    pts: list[tuple[float, float]] = []
    for i in indexes:
        arc = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        pts.extend(arc[1:] if pts else arc)
    return pts


def polygons(topo: dict, name: str) -> list[list[list[int]]]:
    geom = topo["objects"][name]
    geoms = geom["geometries"] if geom["type"] == "GeometryCollection" else [geom]
    out = []
    for g in geoms:
        if g["type"] == "Polygon":
            out.append(g["arcs"])
        elif g["type"] == "MultiPolygon":
            out.extend(g["arcs"])
    return out


def path_data(topo_path: Path) -> str:
    topo = json.loads(topo_path.read_text())
    arcs = decode_arcs(topo)
    parts = []
    for poly in polygons(topo, next(iter(topo["objects"]))):
        for rings in poly:
            pts = ring(arcs, rings)
            if min(lat for _, lat in pts) < MIN_LAT:
                continue  # Antarctica: below the view box
            # A ring that crosses the antimeridian is split where it jumps across the map.
            runs: list[list[tuple[float, float]]] = [[]]
            last = None
            for lon, lat in pts:
                p = (round(lon + 180, 1), round(90 - lat, 1))
                if last is not None and abs(p[0] - last[0]) > 180:
                    runs.append([])
                if p != last:
                    runs[-1].append(p)
                    last = p
            closed = len(runs) == 1
            for run in runs:
                if len(run) < 3:
                    continue
                parts.append("M" + "L".join(f"{x:g} {y:g}" for x, y in run) + ("Z" if closed else ""))
    return "".join(parts)


def main(argv: list[str]) -> None:
    src = Path(argv[1]) if len(argv) > 1 else Path("/tmp/package/land-110m.json")
    d = path_data(src)
    (ROOT / "api/templates/console").mkdir(parents=True, exist_ok=True)
    (ROOT / "api/templates/console/_land_path.txt").write_text(d + "\n")
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 360 150">'
        "<!-- Natural Earth 1:110m land (public domain), via world-atlas (ISC); equirectangular. -->"
        f'<path fill="#d9e2d0" stroke="#9aa88c" stroke-width="0.2" d="{d}"/></svg>\n'
    )
    (ROOT / "api/static/map/land.svg").write_text(svg)
    print(f"wrote {len(d)} characters of path data")


if __name__ == "__main__":
    main(sys.argv)
