"""Calibration of the scorecard's pooled surrogate test: 200 pooled tests of 5 units each, smooth unrelated signals
(integrated random walks) against grokking-like outcome curves. Prints the share with p < 0.05 and p < 0.01.

    python bench/scorecard_calibration.py
"""
import sys, numpy as np; from pathlib import Path; sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from phenomon.scorecard import stats as S

rng=np.random.default_rng(1)
steps=np.arange(0,2560,10)
ps=[]
for test in range(200):
    n=5
    obs=[];nulls=[]
    for u in range(n):
        jump=rng.uniform(600,1800)
        acc=1/(1+np.exp(-(steps-jump)/60))+0.01*rng.standard_normal(len(steps))
        # a smooth unrelated signal: integrated random walk (smooth increments)
        sig=np.cumsum(np.cumsum(rng.standard_normal(len(steps))))
        r,l,nl=S.association(np.diff(sig),np.diff(acc),seed=int(rng.integers(1e9)))
        obs.append(r);nulls.append(nl)
    ps.append(S.pooled_p(obs,nulls,seed=int(rng.integers(1e9))))
ps=np.array(ps); print("pooled smooth nulls: p<0.05", (ps<0.05).mean(), "p<0.01", (ps<0.01).mean())
