"""`continual.residual_window`: the online learner's running residual correction, checked by hand."""

from __future__ import annotations

import torch

from robocl.continual.online import OnlineFinetune
from robocl.dynamics.base import Transitions
from robocl.dynamics.ensemble import GaussianEnsemble
from robocl.robots.codec import PlanarBodyCodec


def _model(ugv_data) -> GaussianEnsemble:
    torch.manual_seed(0)
    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=2, hidden_size=32, hidden_layers=2)
    model.fit_normalizers(ugv_data[0])
    return model.eval()


def test_residual_correction_is_the_mean_of_the_last_window_residuals(ugv_data):
    """A robot whose every transition is the model's prediction plus a constant target offset c: with the
    weights frozen (lr 0), after `window` transitions the corrected prediction is exact, and the
    correction equals the mean residual of exactly the last `window` transitions."""
    model = _model(ugv_data)
    codec = model.codec
    c = torch.tensor([0.02, -0.01, 0.03, 0.1, 0.0, -0.2])
    s, a = ugv_data[0].states[:40], ugv_data[0].actions[:40]
    with torch.no_grad():
        net = codec.targets(s, model.predict(s, a)[0])  # the network alone (weights never change here)
    true_next = codec.integrate(s, net + c)
    strategy = OnlineFinetune(model, lr=0.0, residual_window=5, warmup=10**9)  # warmup: no optimizer step
    before = model.predict(s[20:21], a[20:21])[0]
    assert not torch.allclose(codec.targets(s[20:21], before), codec.targets(s[20:21], true_next[20:21]), atol=1e-3)
    for i in range(20):
        strategy.observe(Transitions(s[i:i + 1], a[i:i + 1], true_next[i:i + 1]))
    assert torch.allclose(model.target_norm.offset, c, atol=1e-5)
    after = model.predict(s[20:21], a[20:21])[0]
    assert torch.allclose(codec.targets(s[20:21], after), codec.targets(s[20:21], true_next[20:21]), atol=1e-5)
    # the offset flips to -c: the window holds the last 5 residuals only, so 2 steps later it is (3c - 2c) / 5
    flipped = codec.integrate(s, net - c)
    for i in range(20, 22):
        strategy.observe(Transitions(s[i:i + 1], a[i:i + 1], flipped[i:i + 1]))
    assert torch.allclose(model.target_norm.offset, c / 5, atol=1e-5)


def test_offset_is_never_saved_and_off_by_default(ugv_data):
    model = _model(ugv_data)
    assert "target_norm.offset" not in model.state_dict()
    strategy = OnlineFinetune(model, lr=1e-3)
    d = ugv_data[0]
    strategy.observe(Transitions(d.states[:1], d.actions[:1], d.next_states[:1] + 1.0))
    assert torch.count_nonzero(model.target_norm.offset) == 0
