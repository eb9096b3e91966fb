"""Truth matching of a jet to the hard-process particle of its class, on a Pythia event record.

The record is a dict of numpy arrays over particles: id, status, d1, d2 (daughter1/2),
px, py, pz. Index conventions follow Pythia's Event: d1 = d2 = 0 no daughters; d1 = d2 > 0 or
d2 = 0 < d1 one daughter; 0 < d1 < d2 the range d1..d2; 0 < d2 < d1 the two daughters d1, d2.
"""
from __future__ import annotations

import numpy as np

from .jet_features import _eta, wrap_phi

MATCH_RADIUS = 0.8
_LIGHT_QUARKS = (1, 2, 3)
_QUARKS = (1, 2, 3, 4, 5)


def daughter_list(i: int, d1: np.ndarray, d2: np.ndarray) -> list[int]:
    a, b = int(d1[i]), int(d2[i])
    if a <= 0:
        return []
    if b == 0 or b == a:
        return [a]
    if a < b:
        return list(range(a, b + 1))
    return [a, b]


def last_copy(i: int, ids: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> int:
    """Follow the particle through recoil copies and emissions (W -> W gamma, t -> t g) to the
    copy that decays: at each step move to the one daughter that carries the same id."""
    for _ in range(ids.size):
        same = [k for k in daughter_list(i, d1, d2) if ids[k] == ids[i]]
        if len(same) != 1:
            return i
        i = same[0]
    raise RuntimeError(f"copy chain of particle {i} (id {ids[i]}) loops in the event record")


def _direction(rec: dict, i: int) -> tuple[float, float]:
    px, py, pz = rec["px"][i], rec["py"][i], rec["pz"][i]
    return float(_eta(px, py, pz)), float(np.arctan2(py, px))


def _decay_quarks(rec: dict, last: int) -> list[int]:
    """Quark daughters of the last copy `last` (the quarks as they leave the decay)."""
    return [k for k in daughter_list(last, rec["d1"], rec["d2"]) if abs(rec["id"][k]) in _QUARKS]


def truth_objects(cls: str, rec: dict) -> list[list[tuple[float, float]]]:
    """Candidates for a jet of class `cls`: each is a list of (eta, phi) directions that must all
    lie within MATCH_RADIUS of the jet axis: the outgoing parton (g, q), or the last copy of the
    boson or top followed by its decay quarks (b, then the W's two quarks, for the top)."""
    ids, status, d1, d2 = rec["id"], np.abs(rec["status"]), rec["d1"], rec["d2"]
    aid = np.abs(ids)
    out: list[list[tuple[float, float]]] = []
    if cls in ("g", "q"):
        pick = (ids == 21) if cls == "g" else np.isin(aid, _LIGHT_QUARKS)
        for i in np.flatnonzero(pick & (status == 23)):
            out.append([_direction(rec, int(i))])
        return out
    if cls in ("W", "Z"):
        pdg = 24 if cls == "W" else 23
        for i in np.flatnonzero((aid == pdg) & (status == 22)):
            last = last_copy(int(i), ids, d1, d2)
            quarks = _decay_quarks(rec, last)
            if len(quarks) == 2:
                out.append([_direction(rec, last)] + [_direction(rec, k) for k in quarks])
        return out
    if cls == "t":
        for i in np.flatnonzero((aid == 6) & (status == 22)):
            last = last_copy(int(i), ids, d1, d2)
            decay = daughter_list(last, d1, d2)
            ws = [k for k in decay if abs(ids[k]) == 24]
            bs = [k for k in decay if abs(ids[k]) in _QUARKS]
            if len(ws) != 1 or len(bs) != 1:
                continue
            quarks = _decay_quarks(rec, last_copy(ws[0], ids, d1, d2))
            if len(quarks) == 2:
                out.append([_direction(rec, last), _direction(rec, bs[0])]
                           + [_direction(rec, k) for k in quarks])
        return out
    raise ValueError(f"unknown class {cls!r}; valid: g, q, W, Z, t")


def is_matched(jet_eta: float, jet_phi: float, candidates: list[list[tuple[float, float]]],
               radius: float = MATCH_RADIUS) -> bool:
    for directions in candidates:
        d = np.asarray(directions)
        dr = np.hypot(d[:, 0] - jet_eta, wrap_phi(d[:, 1] - jet_phi))
        if np.all(dr < radius):
            return True
    return False
