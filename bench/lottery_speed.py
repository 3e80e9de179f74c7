"""Does unstructured sparsity buy speed? A training step dense, masked at 90% sparsity, and with a sparse kernel.

    python bench/lottery_speed.py [--threads 1] [--repeats 200]

For the default lottery MLP (40-300-100-10, batch 100) and for one wide layer (2048×2048, batch 256): the median
wall time of forward + backward + SGD step for (a) the dense network, (b) the masked network at 90% sparsity as
phenomon trains it (weight ⊙ mask), (c) the forward and backward through `torch.sparse` CSR weights at 90%
sparsity. Interleaved, so load affects all three alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
import torch.nn.functional as F


def step_dense(w, x, y, masked: torch.Tensor | None):
    w.grad = None
    out = x @ (w * masked if masked is not None else w).t()
    F.cross_entropy(out, y).backward()
    with torch.no_grad():
        w -= 0.01 * w.grad


def step_sparse(w_vals, csr_template, x, y):
    # sparse @ dense: (out, in) CSR times (in, batch); gradient only for the stored values
    w_vals.grad = None
    w = torch.sparse_csr_tensor(csr_template.crow_indices(), csr_template.col_indices(), w_vals,
                                size=csr_template.shape)
    out = (w @ x.t()).t()
    F.cross_entropy(out, y).backward()
    with torch.no_grad():
        w_vals -= 0.01 * w_vals.grad


def bench(d_in: int, d_out: int, batch: int, repeats: int) -> dict[str, float]:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(d_out, d_in, generator=g, requires_grad=True)
    mask = torch.rand(d_out, d_in, generator=g) > 0.9  # 10% kept
    x, y = torch.randn(batch, d_in, generator=g), torch.randint(d_out, (batch,), generator=g)
    csr = (w.detach() * mask).to_sparse_csr()
    vals = csr.values().clone().requires_grad_(True)
    runs = {"dense": [], "masked 90%": [], "sparse CSR 90%": []}
    fns = {"dense": lambda: step_dense(w, x, y, None), "masked 90%": lambda: step_dense(w, x, y, mask),
           "sparse CSR 90%": lambda: step_sparse(vals, csr, x, y)}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            runs[name].append(1e3 * (time.perf_counter() - t))
    return {k: statistics.median(v[5:]) for k, v in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=200)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # beta-state notices, not results
    for label, shape in (("lottery MLP's 300×100 layer, batch 100", (300, 100, 100)),
                         ("wide 2048×2048 layer, batch 256", (2048, 2048, 256))):
        r = bench(*shape, repeats=a.repeats if shape[0] < 1000 else max(20, a.repeats // 10))
        dense = r["dense"]
        print(f"{label}: " + "  ".join(f"{k} {v:.3f} ms ({v / dense:.2f}×)" for k, v in r.items()))


if __name__ == "__main__":
    main()
