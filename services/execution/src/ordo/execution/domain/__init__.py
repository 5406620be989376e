"""The execution service's pure decisions: no I/O, no clock, no venue calls."""
