"""Fitting a robot's nominal dynamics model from its own recorded data (`robocl-train`)."""
