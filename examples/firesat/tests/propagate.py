"""Independent FireSat propagation with the Python `sgp4` package.

Reads a JSON scenario on stdin and prints, for each lag (the number of
steps between a fire's ignition step and the first step at which the
constellation checks it), the first detection and report of every fire.
"""
import json
import math
import sys
from datetime import datetime, timedelta

from sgp4.api import Satrec, jday
from sgp4.propagation import gstime

R = (2 * 6378137.0 + 6356752.314245179) / 3


def parse(t):
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


def ecef(sat, t):
    jd, fr = jday(t.year, t.month, t.day, t.hour, t.minute, t.second + t.microsecond / 1e6)
    e, r, _ = sat.sgp4(jd, fr)
    if e != 0:
        raise RuntimeError(f"sgp4 error {e}")
    g = gstime(jd + fr)
    x, y, z = (v * 1000.0 for v in r)
    return (math.cos(g) * x + math.sin(g) * y, -math.sin(g) * x + math.cos(g) * y, z)


def surface(lat, lon):
    la, lo = math.radians(lat), math.radians(lon)
    return (R * math.cos(la) * math.cos(lo), R * math.cos(la) * math.sin(lo), R * math.sin(la))


def elevation(s, g):
    d = [s[i] - g[i] for i in range(3)]
    dot = sum(d[i] * g[i] for i in range(3))
    return math.degrees(math.asin(dot / (math.dist(s, g) * math.hypot(*g))))


def min_elevation(alt, f):
    c = math.sin(math.radians(f / 2)) / (R / (R + alt))
    return 0.0 if c > 1 else math.degrees(math.acos(c))


def main():
    sc = json.load(sys.stdin)
    lines = [l for l in sc["tles"].splitlines() if l.strip()]
    sats = [(lines[i].strip(), Satrec.twoline2rv(lines[i + 1], lines[i + 2])) for i in range(0, len(lines), 3)]
    start, stop = parse(sc["start"]), parse(sc["stop"])
    step = timedelta(seconds=sc["step_s"])
    times = []
    t = start
    while t < stop:
        t = min(t + step, stop)
        times.append(t)
    pos = [[ecef(s, t) for _, s in sats] for t in times]
    grounds = [g for g in sc["grounds"] if g["operational"]]
    out = {}
    for lag in sc["lags"]:
        fires = {}
        for f in sc["fires"]:
            ign = parse(f["start"])
            j = next((k for k, t in enumerate(times) if t >= ign), None)
            rec = {"detected": None, "reported": None}
            fires[f["fireId"]] = rec
            if j is None:
                continue
            fp = surface(f["latitude"], f["longitude"])
            det = [None] * len(sats)
            rep = [None] * len(sats)
            for k in range(j + lag, len(times)):
                for i, (name, _) in enumerate(sats):
                    s = pos[k][i]
                    alt = math.hypot(*s) - R
                    if det[i] is None and elevation(s, fp) >= min_elevation(alt, sc["field_of_regard"]):
                        det[i] = k
                        if rec["detected"] is None:
                            rec["detected"] = [times[k].isoformat(), name]
                    if det[i] is not None and rep[i] is None:
                        for g in grounds:
                            if elevation(s, surface(g["latitude"], g["longitude"])) >= g["elevAngle"]:
                                rep[i] = k
                                if rec["reported"] is None:
                                    rec["reported"] = [times[k].isoformat(), name, g["groundId"]]
                                break
        out[str(lag)] = fires
    json.dump(out, sys.stdout)


main()
