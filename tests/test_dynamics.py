"""The probabilistic ensemble learns UGV dynamics from real MuJoCo transitions."""

import torch

from robocl.dynamics.base import Transitions
from robocl.dynamics.baselines import ConstantVelocityModel
from robocl.dynamics.ensemble import GaussianEnsemble
from robocl.dynamics.training import train_offline
from robocl.robots.codec import PlanarBodyCodec, wrap_angle


def position_error(model, data: Transitions) -> float:
    pred, _ = model.predict(data.states, data.actions)
    return float(torch.linalg.vector_norm(pred[:, :2] - data.next_states[:, :2], dim=1).mean())


def test_codec_round_trip():
    codec = PlanarBodyCodec()
    s = torch.tensor([[1.0, -2.0, 3.0, 0.5, 0.0, 0.2], [0.0, 0.0, -3.1, 0.1, 0.01, -1.0]])
    s2 = torch.tensor([[1.3, -1.9, -3.1, 0.6, 0.0, 0.3], [0.1, 0.05, 3.1, 0.2, 0.0, -0.5]])
    back = codec.integrate(s, codec.targets(s, s2))
    assert torch.allclose(back[:, :2], s2[:, :2], atol=1e-5)
    assert torch.allclose(wrap_angle(back[:, 2] - s2[:, 2]), torch.zeros(2), atol=1e-5)
    # yaw change across the +-pi seam is small, not ~2*pi
    assert abs(float(codec.targets(s, s2)[0, 2])) < 0.3


def test_ensemble_nll_falls_and_beats_constant_velocity(ugv_data):
    train, test = ugv_data
    torch.manual_seed(0)
    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=3, hidden_size=64, hidden_layers=2)
    history = train_offline(model, train, epochs=25, batch_size=128, lr=3e-3)
    losses = history["train_loss"]
    assert losses[-1] < losses[0] - 1.0, losses  # Gaussian NLL falls substantially
    learned = position_error(model, test)
    baseline = position_error(ConstantVelocityModel(PlanarBodyCodec(), dt=0.2), test)
    assert learned < 0.5 * baseline, (learned, baseline)


def test_ensemble_step_assigns_particles_to_members():
    torch.manual_seed(0)
    model = GaussianEnsemble(PlanarBodyCodec(), ensemble_size=4, hidden_size=16, hidden_layers=1).eval()
    states = torch.zeros(10, 6)  # not a multiple of 4: exercises padding
    actions = torch.rand(10, 2)
    with torch.inference_mode():
        out = model.step(states, actions)
        mean, _ = model.predict_targets(model.model_inputs(states, actions))
    assert out.shape == (10, 6)
    per = 3  # ceil(10 / 4): particle i uses member i // 3
    for i in range(10):
        expected = model.codec.integrate(states[i], model.target_norm.denormalize(mean[i // per, i]))
        assert torch.allclose(out[i], expected, atol=1e-5)
