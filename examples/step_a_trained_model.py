"""Load a model robocl-train wrote for your robot and step a controller on it by hand (no config).

python examples/step_a_trained_model.py run_dir/model.pt
"""

import sys

import numpy as np
import torch

from robocl import MPPI, Controller, WaypointCost, load_model

model, info = load_model(sys.argv[1])  # rebuilt from the robot spec and settings the file carries
robot = info["robot"]
cost = WaypointCost()
cost.set_goal(torch.tensor([1.0, 0.0]))
planner = MPPI(model.step, cost, action_low=robot["action_low"], action_high=robot["action_high"],
               population=200, reset_particles=model.reset_particles)
controller = Controller(model, planner, safe_action=np.asarray(robot["safe_action"], float))
state = np.zeros(model.codec.state_dim)  # your robot's state, e.g. from its odometry
for step in range(5):
    action = controller.act(state)
    with torch.no_grad():  # here the model's mean prediction stands in for the robot
        predicted, _ = model.predict(torch.as_tensor(state, dtype=torch.float32)[None],
                                     torch.as_tensor(action, dtype=torch.float32)[None])
    state = predicted[0].numpy()
    print(f"step {step}: command {np.round(action, 3)} -> x {state[0]:+.3f} m")
print(f"model trained for robot {robot['name']!r} on {info['metrics'].get('train_transitions')} transitions")
