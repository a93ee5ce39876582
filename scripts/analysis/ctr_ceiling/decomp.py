# Recover the generator's hidden components from the exact truth logits (analysis only; no model sees this).
import numpy as np, sys, math
from common import *
seed=int(sys.argv[1]); w=int(sys.argv[2])
d=D(seed,w)
n=len(d['ts']); ts=d['ts']; u=d['u']; i=d['i']; c=d['c']
nu,ni,nc=int(d['nu']),int(d['ni']),int(d['nc'])
L=true_logits(d)
cs,sn=drift_phase(ts)
ucnt=np.bincount(u,minlength=nu)
heavy=ucnt[u]>=300
print('heavy share',heavy.mean(), 'users', (ucnt>=300).sum())
uc=u*nc+c
# ALS on heavy: L = J[i] + a[uc] + b1[uc]*(cos-1) + b2[uc]*sin
J=np.zeros(ni)
h=np.where(heavy)[0]
X=np.stack([np.ones(len(h)),cs[h]-1,sn[h]],1)
g=uc[h]
for it in range(30):
    r=L[h]-J[i[h]]
    # per-group 3x3 least squares
    G=np.zeros((nu*nc,3,3)); B=np.zeros((nu*nc,3))
    np.add.at(G,g,X[:,:,None]*X[:,None,:]); np.add.at(B,g,X*r[:,None])
    G+=np.eye(3)*1e-9
    gg=np.unique(g)
    coef=np.zeros((nu*nc,3)); coef[gg]=np.linalg.solve(G[gg],B[gg][:,:,None])[:,:,0]
    up=(X*coef[g]).sum(1)
    r2=L[h]-up
    s=np.bincount(i[h],r2,ni); k=np.bincount(i[h],None,ni)
    J=np.where(k>0,s/np.maximum(k,1),0)
    res=L[h]-J[i[h]]-up
    if it%5==4: print(it,'rms',np.sqrt((res**2).mean()))
np.savez(work('py/decomp1_%d.npz'%seed),J=J,coef=coef,k=k)
