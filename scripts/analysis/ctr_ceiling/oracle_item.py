# Oracle 2: knows every user's bias and segment, the segment x category matrices, the price term and b0;
# learns each item's latent quality from that item's own delayed labels (posterior on a grid).
import numpy as np, sys
from common import *
seed=int(sys.argv[1]); w=int(sys.argv[2])
d=D(seed,w); z=np.load(work('py/comp_%d.npz'%seed))
n=len(d['ts']); ts=d['ts']; lt=d['ltime']; y=d['label']; u=d['u']; i=d['i']; c=d['c']; price=d['price']
ni=int(d['ni']); nc=int(d['nc'])
J=z['J']; Jk=z['Jknown']; A0=z['A0']; A1=z['A1']; ub=z['ub']; seg=z['seg']
cat=np.zeros(ni,int); cat[i]=c; pr=np.zeros(ni); pr[i]=price
# J = b0 + beta*ln price + g[cat] + iq  -> least squares with per-category intercepts
X=np.concatenate([np.log(pr[Jk])[:,None], np.eye(nc)[cat[Jk]]],1)
coef,*_=np.linalg.lstsq(X,J[Jk],rcond=None)
iq=J[Jk]-X@coef
print('beta_price',coef[0],'iq sd',iq.std())
known_part=np.concatenate([np.log(pr)[:,None], np.eye(nc)[cat]],1)@coef   # item term without quality
cs,sn=drift_phase(ts)
uk=seg[u]>=0; s=np.maximum(seg[u],0)
base=known_part[i]+np.where(uk, ub[u]+A0[s,c]*cs+A1[s,c]*sn, 0.0)
grid=np.linspace(-2.5,2.5,61); prior=-0.5*(grid/0.5)**2; prior-=np.log(np.exp(prior).sum())
post={}
ev=np.concatenate([np.stack([lt,np.zeros(n,np.int64),np.arange(n)],1),np.stack([ts,np.ones(n,np.int64),np.arange(n)],1)])
o=np.lexsort((ev[:,2],ev[:,1],ev[:,0])); ev=ev[o][:,1:]
pred=np.zeros(n)
for kind,k in ev.tolist():
    lp=post.get(i[k])
    if lp is None: lp=prior
    p=1/(1+np.exp(-(base[k]+grid)))
    if kind==1:
        wgt=np.exp(lp-lp.max()); pred[k]=(wgt*p).sum()/wgt.sum()
    else:
        post[i[k]]=lp+(np.log(p) if y[k] else np.log1p(-p))
cut=ts[n//5]; m=ts>=cut
np.save(work('py/oracleitem_%d_%d.npy'%(seed,w)),pred)
print('item-learning oracle',auc(pred[m],y[m]),'truth',auc(d['truth'][m],y[m]), 'on known users only', auc(pred[m&uk],y[m&uk]), auc(d['truth'][m&uk],y[m&uk]))
