"""The assembly layer: the one place a config becomes the objects that run (models, controllers).

- `robocl.build.models`: the dynamics model (and its state codec) a config names, fresh or from a
  robocl-train artifact (`model=PATH`); `load_model` reads an artifact with no config at all.
- `robocl.build.pretrained`: the nominal-regime model, from `model=PATH` or the simulator-pretraining
  cache (trained and cached on a cache miss; see that module).
- `robocl.build.controller`: a fresh Controller (model copy, strategy, planner, refiner) for one run.

Commands (`robocl.cli`), the ROS node (`robocl_ros`) and the experiment runners build through here;
this package imports neither of them. Nothing is imported here, so `import robocl.build` stays light.
"""
