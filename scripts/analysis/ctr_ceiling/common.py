import numpy as np
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
def D(seed,w): return dict(np.load(f'/tmp/tr/py/d{seed}_{w}.npz'))
