"""``mspd-edge verify``: does a published copy still carry its protection? (docs/verify.md)

From the original and the protection settings the protected image is recomputed exactly and
compared with the published copy at the model input (:mod:`.measure`); ``--simulate``
scenarios (:mod:`.steps`) apply a platform's steps to the recomputed protection; the shipped
robust targets measure the defence's effect (:mod:`.robust`, needs torch).
"""
from .job import Pair, Verification, pair_inputs, read_settings, verify_pairs
from .measure import VERDICTS, Comparison, compare
from .report import markdown, text_table
from .steps import apply_scenario, parse_scenarios

__all__ = ["VERDICTS", "Comparison", "Pair", "Verification", "apply_scenario", "compare",
           "markdown", "pair_inputs", "parse_scenarios", "read_settings", "text_table", "verify_pairs"]
