"""mspd-edge evaluate: the paper's evaluation protocol (attacks, conditions, reports)."""
