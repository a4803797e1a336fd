"""Offline adaptation evaluation: record robot runs as ROS bags, read bags/CSV, replay them through models.

- `recording`: write what a robot saw and did (odometry, commands, regime labels) as a ROS 2 bag.
- `readers`: ROS 1 bags, ROS 2 bags (MCAP or sqlite3) and CSV, time-aligned at a control period.
- `evaluate`: prequential replay (predict, then learn) through dynamics models + continual strategies,
  and refiners; `metrics`: time-to-adapt, forgetting, change detection.
"""
