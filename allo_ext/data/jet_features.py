"""The 16 hls4ml particle features of one jet, computed from its constituents' four-momenta.

Definitions (angles in radians, energies in GeV; "jet" is the E-scheme sum of all constituents):
  px, py, pz, E            particle four-momentum
  E_rel, pT_rel            E / E_jet, pT / pT_jet
  eta, phi                 pseudorapidity and azimuth of the particle
  eta_rel, phi_rel         eta - eta_jet, phi - phi_jet wrapped into [-pi, pi)
  eta_rot, phi_rot         (eta_rel, phi_rel) rotated so that the pT-weighted principal axis
                           (leading eigenvector of sum pT r r^T, r = (eta_rel, phi_rel)) lies
                           along +eta; the axis sign is chosen with a non-negative eta component.
                           The official definition was not found; this is ours.
  deltaR                   sqrt(eta_rel^2 + phi_rel^2)
  costheta                 pz / |p| (polar angle to the beam)
  costheta_rel             cosine of the angle between the particle and the jet momentum
"""
from __future__ import annotations

import numpy as np

from .hls4ml_format import FEATURE_NAMES, N_PARTICLES

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


def _eta(px, py, pz):
    pt = np.hypot(px, py)
    # arcsinh(pz/pT) is exact where the log form loses precision; pT = 0 means on the beam.
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)),
                        np.sign(pz) * 1e3)


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    return (np.asarray(dphi) + np.pi) % (2 * np.pi) - np.pi


def jet_kinematics(p4: np.ndarray) -> dict[str, float]:
    """pt, eta, phi, mass, E of the summed four-momenta (rows px, py, pz, E)."""
    px, py, pz, e = np.asarray(p4, np.float64).sum(axis=0)
    pt = float(np.hypot(px, py))
    m2 = e * e - px * px - py * py - pz * pz
    return {"pt": pt, "eta": float(_eta(px, py, pz)), "phi": float(np.arctan2(py, px)),
            "mass": float(np.sqrt(max(m2, 0.0))), "E": float(e),
            "px": float(px), "py": float(py), "pz": float(pz)}


def constituent_features(p4: np.ndarray, n_particles: int = N_PARTICLES
                         ) -> tuple[np.ndarray, dict[str, float]]:
    """(n_particles, 16) float32 features sorted by pT (zero-padded) and the jet kinematics.
    `p4` is (n, 4) with columns px, py, pz, E; all n constituents enter the jet sums."""
    p4 = np.asarray(p4, np.float64)
    if p4.ndim != 2 or p4.shape[1] != 4 or p4.shape[0] == 0:
        raise ValueError(f"constituents must be (n >= 1, 4) [px, py, pz, E], got {p4.shape}")
    jet = jet_kinematics(p4)
    px, py, pz, e = p4.T
    pt = np.hypot(px, py)
    eta = _eta(px, py, pz)
    phi = np.arctan2(py, px)
    eta_rel = eta - jet["eta"]
    phi_rel = wrap_phi(phi - jet["phi"])

    r = np.stack([eta_rel, phi_rel], axis=1)
    moment = (r * pt[:, None]).T @ r
    _, vecs = np.linalg.eigh(moment)
    axis = vecs[:, -1]
    if axis[0] < 0 or (axis[0] == 0 and axis[1] < 0):
        axis = -axis
    eta_rot = r @ axis
    phi_rot = r @ np.array([-axis[1], axis[0]])

    p_abs = np.sqrt(px * px + py * py + pz * pz)
    jet_p = np.array([jet["px"], jet["py"], jet["pz"]])
    jet_p_abs = np.linalg.norm(jet_p)
    with np.errstate(divide="ignore", invalid="ignore"):
        costheta = np.where(p_abs > 0, pz / p_abs, 0.0)
        costheta_rel = np.where(p_abs > 0, (p4[:, :3] @ jet_p) / (p_abs * jet_p_abs), 0.0)

    cols = {
        "px": px, "py": py, "pz": pz, "E": e, "E_rel": e / jet["E"], "pT": pt,
        "pT_rel": pt / jet["pt"], "eta": eta, "eta_rel": eta_rel, "eta_rot": eta_rot,
        "phi": phi, "phi_rel": phi_rel, "phi_rot": phi_rot,
        "deltaR": np.hypot(eta_rel, phi_rel), "costheta": costheta, "costheta_rel": costheta_rel,
    }
    order = np.argsort(-pt, kind="stable")[:n_particles]
    out = np.zeros((n_particles, len(FEATURE_NAMES)), np.float32)
    for name, values in cols.items():
        out[: order.size, _COL[name]] = values[order]
    return out, jet
