"""Attacks written out here: the dense ones training needs (FGSM-RS, N-FGSM, PGD-Linf) and the
sparse (L0) ones of the evaluation (sparse-PGD, Sparse-RS and their union ``sparse_l0``)."""
from .dense import fgsm_rs, n_fgsm, pgd_linf
from .sparse import pixel_budget, sparse_l0
from .sparse_pgd import sparse_pgd, sparse_pgd_step
from .sparse_rs import sparse_rs

__all__ = ["fgsm_rs", "n_fgsm", "pgd_linf", "pixel_budget", "sparse_l0", "sparse_pgd", "sparse_pgd_step", "sparse_rs"]
