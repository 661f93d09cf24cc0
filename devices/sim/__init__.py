"""Simulated devices that serve the same profiles the collector reads."""
