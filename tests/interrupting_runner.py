"""A runner for tests: finishes one run, then fails or is interrupted (as a crash or Ctrl-C would)."""


def run(cfg, run_dir, progress, sink):
    sink.add_run({"method": "mppi", "seed": 0, "task": "done_before_failure", "success_rate": 1.0})
    if cfg.get("interrupt", False):
        raise KeyboardInterrupt
    raise RuntimeError("simulated failure after the first run")
