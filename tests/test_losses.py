import math

import pytest
import torch

from gankit.losses import LOSSES, clip_weights, d_loss, g_loss, gradient_penalty, r1_penalty
from gankit.errors import ConfigError


def test_loss_values_at_known_points():
    z = torch.zeros(4)
    assert d_loss("nonsaturating", z, z).item() == pytest.approx(2 * math.log(2))  # D = 1/2 on both
    assert g_loss("nonsaturating", z).item() == pytest.approx(math.log(2))
    assert g_loss("minimax", z).item() == pytest.approx(-math.log(2))  # log(1 - 1/2)
    assert d_loss("wasserstein", torch.tensor([3.0]), torch.tensor([1.0])).item() == -2.0
    assert d_loss("hinge", torch.tensor([2.0]), torch.tensor([-2.0])).item() == 0.0
    assert d_loss("hinge", torch.tensor([0.0]), torch.tensor([0.0])).item() == 2.0
    assert d_loss("lsgan", torch.ones(3), torch.zeros(3)).item() == 0.0
    assert g_loss("lsgan", torch.ones(3)).item() == 0.0


def test_minimax_and_nonsaturating_share_the_optimum_direction():
    # both generator losses decrease as D(G(z)) grows; non-saturating keeps a large gradient when D rejects fakes
    f = torch.tensor([-6.0], requires_grad=True)
    (gm,) = torch.autograd.grad(g_loss("minimax", f), f)
    (gn,) = torch.autograd.grad(g_loss("nonsaturating", f), f)
    assert gm.item() < 0 and gn.item() < 0
    assert abs(gn.item()) > 100 * abs(gm.item())  # Goodfellow et al. 2014, section 3


def test_every_loss_is_registered_and_unknown_fails():
    assert set(LOSSES) == {"minimax", "nonsaturating", "wasserstein", "hinge", "lsgan"}
    with pytest.raises(ConfigError, match="unknown loss"):
        d_loss("nope", torch.zeros(1), torch.zeros(1))


def test_gradient_penalty_matches_reference():
    torch.manual_seed(0)
    w = torch.tensor([3.0, 4.0])  # linear critic with ||grad|| = 5 everywhere -> GP = (5 - 1)^2 = 16
    gp = gradient_penalty(lambda x: x @ w, torch.randn(8, 2), torch.randn(8, 2))
    assert gp.item() == pytest.approx(16.0)
    unit = w / 5  # ||grad|| = 1 -> GP = 0
    assert gradient_penalty(lambda x: x @ unit, torch.randn(8, 2), torch.randn(8, 2)).item() == pytest.approx(0.0, abs=1e-10)
    # a nonlinear critic: compare with a finite-difference gradient norm at the same interpolates
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()
    real, fake = torch.randn(5, 2).double(), torch.randn(5, 2).double()
    g = torch.Generator().manual_seed(1)
    gp = gradient_penalty(lambda x: net(x), real, fake, generator=g)
    eps = torch.rand(5, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_hat = eps * real + (1 - eps) * fake
    h = 1e-6
    grads = torch.stack([(net(x_hat + h * e) - net(x_hat - h * e)).squeeze(1) / (2 * h)
                         for e in torch.eye(2, dtype=torch.float64)], 1)
    ref = ((grads.norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(ref.item(), rel=1e-6)


def test_r1_penalty_matches_analytic_gradient():
    x = torch.randn(6, 3, requires_grad=True)
    out = (x ** 2).sum(1)  # grad = 2x -> ||grad||^2 = 4 ||x||^2
    r1 = r1_penalty(out, x)
    assert r1.item() == pytest.approx((4 * x.detach().pow(2).sum(1)).mean().item(), rel=1e-6)
    (g,) = torch.autograd.grad(r1, x)  # create_graph=True: the penalty itself is differentiable
    assert torch.allclose(g, 8 * x.detach() / 6, atol=1e-6)


def test_clip_weights():
    m = torch.nn.Linear(4, 4)
    with torch.no_grad():
        m.weight.mul_(100)
    clip_weights(m, 0.01)
    assert all(p.abs().max() <= 0.01 for p in m.parameters())
