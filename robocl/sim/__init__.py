"""Simulation episodes: exploration data (`data.py`), a Controller driving a waypoint mission
(`rollouts.py`) or tracking a reference (`tracking.py`). Config-free: they take the env, the controller
and plain values, and import neither the commands, the experiment runners nor the assembly layer."""
