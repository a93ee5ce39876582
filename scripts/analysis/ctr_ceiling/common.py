import os
import numpy as np

# Where the inputs and intermediates live (see README.md).
WORK = os.environ.get('WEIR_CTR_CEILING_DIR', '/tmp/tr')
def work(name): return os.path.join(WORK, name)

# The generator's drift: affinities rotate with a 6-hour period from 2026-01-01T00:00Z.
T0_MS = 1767225600000
PERIOD_MS = 6*3600*1000
def drift_phase(ts):
    """cos and sin of each event's drift phase."""
    ph = 2*np.pi*((ts-T0_MS) % PERIOD_MS)/PERIOD_MS
    return np.cos(ph), np.sin(ph)

def true_logits(d):
    p = d['truth']
    return np.log(p/(1-p))
def auc(s,y):
    s=np.asarray(s,float); y=np.asarray(y).astype(bool)
    o=np.argsort(s,kind='mergesort'); ss=s[o]
    # average ranks for ties
    r=np.empty(len(s)); 
    uniq,idx,cnt=np.unique(ss,return_index=True,return_counts=True)
    avg=idx+(cnt+1)/2.0
    r[o]=np.repeat(avg,cnt)
    npos=y.sum(); nneg=len(y)-npos
    return (r[y].sum()-npos*(npos+1)/2)/(npos*nneg)
def D(seed,w): return dict(np.load(work(f'py/d{seed}_{w}.npz')))
