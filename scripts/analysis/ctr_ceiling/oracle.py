# Bayes oracle: knows the item term J, the segment x category matrices and the priors exactly;
# learns each user's bias and segment from that user's own delayed labels (posterior on a grid).
import numpy as np, sys, math
from common import *
seed=int(sys.argv[1]); w=int(sys.argv[2])
d=D(seed,w); z=np.load(work('py/comp_%d.npz'%seed))
n=len(d['ts']); ts=d['ts']; lt=d['ltime']; y=d['label']; u=d['u']; i=d['i']; c=d['c']
mode=sys.argv[3] if len(sys.argv)>3 else 'delayed'
if mode=='hold': lt=np.maximum(lt,ts+w)
if mode=='instant': lt=ts+1
J=np.where(z['Jknown'],z['J'],z['J'][z['Jknown']].mean()); A0=z['A0']; A1=z['A1']
cs,sn=drift_phase(ts)
S=A0.shape[0]
grid=np.linspace(-2.75,2.75,45); prior=-0.5*(grid/0.55)**2; prior-=np.log(np.exp(prior).sum()); 
lp0=np.tile(prior,(S,1))-np.log(S)   # S x G
post={}
ev=np.concatenate([np.stack([lt,np.zeros(n,np.int64),np.arange(n)],1),np.stack([ts,np.ones(n,np.int64),np.arange(n)],1)])
o=np.lexsort((ev[:,2],ev[:,1],ev[:,0])); ev=ev[o][:,1:]
pred=np.zeros(n)
def logits(k):
    aff=A0[:,c[k]]*cs[k]+A1[:,c[k]]*sn[k]
    return J[i[k]]+aff[:,None]+grid[None,:]
for kind,k in ev.tolist():
    lp=post.get(u[k])
    if lp is None: lp=lp0
    x=logits(k); p=1/(1+np.exp(-x))
    if kind==1:
        wgt=np.exp(lp-lp.max()); pred[k]=(wgt*p).sum()/wgt.sum()
    else:
        post[u[k]]=lp+(np.log(p) if y[k] else np.log1p(-p))
cut=ts[n//5]; m=ts>=cut
np.save(work('py/oracle_%d_%d_%s.npy'%(seed,w,mode)),pred)
print(mode,'bayes oracle (user learned from labels)',auc(pred[m],y[m]),'truth',auc(d['truth'][m],y[m]))
