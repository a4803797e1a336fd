"""The assembly layer: the one place a config becomes the objects that run (models, controllers).

- `robocl.build.models`: the dynamics model (and its state codec) a config names, fresh or from a
  robocl-train artifact (`model=PATH`); `load_model` reads an artifact with no config at all.
- `robocl.build.pretrained`: the nominal-regime model, from `model=PATH` or the simulator-pretraining
  cache (trained and cached on a cache miss; see that module).
- `robocl.build.refiners`: the refiner network a `refiner=` needs (AFM: trained and cached on a cache miss).
  These two are the cache-filling steps: the commands and runners call them explicitly, once, before they
  build; nothing that builds an object (a factory, `make_controller`) calls them, so building never
  simulates or trains (a missing AFM network is a usage error naming the command that trains it).
- `robocl.build.controller`: a fresh Controller (model copy, strategy, planner, refiner) for one run.
- `robocl.build.planners`: MPPI / CEM with `planner=`'s settings; `robocl.build.factory`: any component
  by the `factory:` its config node names (strategies, refiners, dynamics models).
- `robocl.build.methods`: the `methods=[...]` grammar (PLANNER[_afm][_online]) and its checks against
  `planner=` and `refiner=`; `robocl.build.checks`: config values checked into one UsageError line each.

Commands (`robocl.cli`), the ROS node's set-up (`robocl_ros`) and the experiment runners build through here;
this package imports neither of them, and nothing else imports it (tests/test_architecture.py). Nothing is
imported here, so `import robocl.build` stays light.
"""
