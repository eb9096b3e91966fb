"""Zoo models written from their papers' descriptions (no vendorable source: the reference code is
GPL (energyflow's EFN) or in another framework), at FPGA-tagger sizes.

- EFN: Komiske, Metodiev, Thaler, "Energy Flow Networks: Deep Sets for Particle Jets",
  JHEP 01 (2019) 121, eq. (1.3): ``F(sum_i z_i Phi(eta_i, phi_i))`` with z the momentum fraction.
- JEDI-net: Moreno et al., "JEDI-net: a jet identification algorithm based on interaction
  networks", EPJC 80 (2020) 58, section 3: ``B = [I Rr, I Rs]`` over all ordered particle pairs,
  edge MLP f_R, ``Ebar = E Rr^T``, node MLP f_O on ``[I, Ebar]``, sum over particles, classifier
  phi_C. The activations are SELU, as in the paper's best configuration.
"""
import torch
import torch.nn as nn


def mlp(sizes, act):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers)


class EFN(nn.Module):
    def __init__(self, phi_sizes=(32, 32, 16), f_sizes=(32, 32), num_classes=5):
        super().__init__()
        self.phi = mlp((2,) + tuple(phi_sizes), nn.ReLU)
        self.f = nn.Sequential(mlp((phi_sizes[-1],) + tuple(f_sizes), nn.ReLU), nn.Linear(f_sizes[-1], num_classes))

    def forward(self, z, angles):  # z: (B, P) momentum fractions; angles: (B, P, 2) (eta, phi) to the jet axis
        latent = (z.unsqueeze(-1) * self.phi(angles)).sum(1)
        return self.f(latent)


class JEDINet(nn.Module):
    def __init__(self, n_particles=16, n_features=16, hidden=16, de=8, do=8, num_classes=5):
        super().__init__()
        p = n_particles
        pairs = [(r, s) for r in range(p) for s in range(p) if r != s]
        rr = torch.zeros(p, len(pairs))
        rs = torch.zeros(p, len(pairs))
        for k, (r, s) in enumerate(pairs):
            rr[r, k] = 1.0
            rs[s, k] = 1.0
        self.register_buffer("Rr", rr)
        self.register_buffer("Rs", rs)
        self.f_r = nn.Sequential(nn.Linear(2 * n_features, hidden), nn.SELU(), nn.Linear(hidden, hidden // 2),
                                 nn.SELU(), nn.Linear(hidden // 2, de), nn.SELU())
        self.f_o = nn.Sequential(nn.Linear(n_features + de, hidden), nn.SELU(), nn.Linear(hidden, hidden // 2),
                                 nn.SELU(), nn.Linear(hidden // 2, do), nn.SELU())
        self.phi_c = nn.Sequential(nn.Linear(do, hidden), nn.SELU(), nn.Linear(hidden, hidden // 2), nn.SELU(),
                                   nn.Linear(hidden // 2, num_classes))

    def forward(self, x):  # x: (B, P, F), the paper's I transposed
        i = x.transpose(1, 2)  # (B, F, P)
        b = torch.cat([i @ self.Rr, i @ self.Rs], 1)  # (B, 2F, Npairs)
        e = self.f_r(b.transpose(1, 2))  # (B, Npairs, De)
        ebar = e.transpose(1, 2) @ self.Rr.t()  # (B, De, P)
        c = torch.cat([i, ebar], 1).transpose(1, 2)  # (B, P, F + De)
        o = self.f_o(c)  # (B, P, Do)
        return self.phi_c(o.sum(1))
