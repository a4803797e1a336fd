"""Experiments as independent units (one episode, one sequence, one training) run serially or on Ray.

`units.py` says what a unit is and runs one (timing, log capture, error capture); `ledger.py` keeps
finished units on disk (`units.json`) so results come out in canonical order and `resume=true`
skips them; `executor.py` fans units out, in-process or over a local Ray instance or a cluster.
"""
