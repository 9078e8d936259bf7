"""Benchmarks of generated services: programs that print figures, never timed assertions."""
