"""The zoo: public jet-tagging models at FPGA-tagger sizes, each with inputs shaped as its code expects.

Each entry: the model (BatchNorm statistics randomised), a function giving a batch of inputs, and
where its definition comes from. Vendored definitions live in ``zoo_models/`` unchanged except for
lines marked "allo-ext edit" (imports only); see README.md there for repository, commit, path and
licence. Constructor arguments choose the FPGA-sized configuration and are not edits:
``trim=False`` (the sequence trimmer cuts every jet to the longest one in the batch, which mixes
jets and has no fixed shape) and ``pair_embed_sparse_eval=(False, False)`` (the sparse path uses
``nonzero``, whose size depends on the data) for ParT and ParticleNet.
"""
import functools

import torch

from zoo_models import jetformer_adjusted, jetformer_net, part_pcnn, part_pfn, weaver_particle_transformer
from zoo_models import weaver_particlenet, written

P = 16  # particles per jet
F = 16  # features per particle (the hls4ml jet dataset's 16)
CLASSES = 5


def _mask(b, g, p=P):
    m = (torch.rand(b, 1, p, generator=g) > 0.3).float()
    m[:, :, :4] = 1.0  # every jet has a few particles
    return m


def _four_vectors(b, g, mask, p=P):
    pt = torch.rand(b, 1, p, generator=g) * 50 + 1
    eta = torch.randn(b, 1, p, generator=g) * 0.4
    phi = torch.randn(b, 1, p, generator=g) * 0.4
    px, py, pz = pt * torch.cos(phi), pt * torch.sin(phi), pt * torch.sinh(eta)
    e = torch.sqrt(px ** 2 + py ** 2 + pz ** 2 + 0.1)
    return torch.cat([px, py, pz, e], 1) * mask


def jets(b, g):
    return (torch.randn(b, P, F, generator=g),)


def points_features_mask(b, g):
    m = _mask(b, g)
    return torch.randn(b, 2, P, generator=g) * m, torch.randn(b, F, P, generator=g) * m, m


def weaver_four_inputs(b, g):  # (points, features, lorentz_vectors, mask), the particle_transformer examples
    pts, fts, m = points_features_mask(b, g)
    return pts, fts, _four_vectors(b, g, m), m


def part_inputs(b, g, p=8):
    m = _mask(b, g, p)
    return torch.randn(b, F, p, generator=g) * m, _four_vectors(b, g, m, p), m


def efn_inputs(b, g):
    z = torch.rand(b, P, generator=g)
    return z / z.sum(1, keepdim=True), torch.randn(b, P, 2, generator=g) * 0.4


def jedi_inputs(b, g):
    return (torch.randn(b, 8, F, generator=g),)


ZOO = {
    "jetformer": (lambda: jetformer_net.JetFormer(in_dim=F, embbed_dim=16, num_heads=2, num_classes=CLASSES,
                                                  num_transformers=2, num_particles=P), jets,
                  "walkieq/JetFormer transformer/src/net.py (vendored, MIT)"),
    "jetformer_allo_port": (lambda: jetformer_adjusted.JetFormer(in_dim=F, embbed_dim=16, num_heads=2,
                                                                 num_classes=CLASSES, num_transformers=2,
                                                                 num_particles=P), jets,
                            "walkieq/JetFormer transformer/src/adjusted_model.py (vendored, MIT)"),
    "particle_transformer": (lambda: weaver_particle_transformer.ParticleTransformer(
        F, CLASSES, pair_input_dim=4, embed_dims=(16, 16), pair_embed_dims=(8, 8), num_heads=2, num_layers=1,
        num_cls_layers=1, fc_params=[], trim=False, pair_embed_sparse_eval=(False, False)), part_inputs,
        "hqucms/weaver-core weaver/nn/model/ParticleTransformer.py (vendored, MIT)"),
    "particlenet": (lambda: weaver_particlenet.ParticleNet(F, CLASSES, conv_params=[(4, (16, 16, 16)),
                                                                                    (4, (16, 16, 16))],
                                                           fc_params=[(32, 0.1)], trim=False),
                    points_features_mask, "hqucms/weaver-core weaver/nn/model/ParticleNet.py (vendored, MIT)"),
    "pfn": (lambda: part_pfn.ParticleFlowNetwork(F, CLASSES, Phi_sizes=(32, 32, 32), F_sizes=(32, 32), use_bn=True),
            weaver_four_inputs, "jet-universe/particle_transformer networks/example_PFN.py (vendored, MIT)"),
    "pcnn": (lambda: part_pcnn.ResNet(F, CLASSES, conv_params=[(16,), (16, 16), (32, 32)], fc_params=[(32, 0.0)]),
             weaver_four_inputs, "jet-universe/particle_transformer networks/example_PCNN.py (vendored, MIT)"),
    "efn": (lambda: written.EFN(), efn_inputs, "Komiske et al. 2019 (written from the paper)"),
    "jedinet": (lambda: written.JEDINet(n_particles=8, n_features=F), jedi_inputs,
                "Moreno et al. 2020 (written from the paper, SELU)"),
}


@functools.lru_cache(maxsize=None)
def model(name: str) -> torch.nn.Module:
    from common import prepared

    torch.manual_seed(0)
    return prepared(ZOO[name][0]())


def inputs(name: str, batch: int, seed: int = 1) -> tuple:
    return ZOO[name][1](batch, torch.Generator().manual_seed(seed))
