import numpy as np, sys, math, argparse
from common import *
p=argparse.ArgumentParser()
p.add_argument('--seed',type=int,default=7); p.add_argument('--w',type=int,default=300000)
p.add_argument('--alpha',type=float,default=0.3); p.add_argument('--beta',type=float,default=1.0)
p.add_argument('--l2',type=float,default=0.0); p.add_argument('--feats',default='u,i,c,pc,uc')
p.add_argument("--lag",type=int,default=0); p.add_argument("--hold",type=int,default=-1)
a=p.parse_args()
d=D(a.seed,a.w)
n=len(d['ts']); ts=d['ts']; lt=d['ltime']; y=d['label']
if a.hold>=0: lt=np.maximum(lt, ts+a.hold)
u,i,c,pb=d['u'],d['i'],d['c'],d['pb']
nu,ni,nc=int(d['nu']),int(d['ni']),int(d['nc'])
F=[]
off=0
for f in a.feats.split(','):
    if f=='u': F.append(u+off); off+=nu
    elif f=='i': F.append(i+off); off+=ni
    elif f=='c': F.append(c+off); off+=nc
    elif f=='pc': F.append(c*64+pb+off); off+=nc*64
    elif f=='uc': F.append(u*nc+c+off); off+=nu*nc
    elif f=='bias': F.append(np.zeros(n,np.int64)+off); off+=1
X=np.stack(F,1).tolist()
z=[0.0]*off; nn=[0.0]*off; w=[0.0]*off
alpha,beta,l2=a.alpha,a.beta,a.l2
# event order: (time, kind) kind 0=label(train) before 1=predict? Rust: version published strictly before impression time -> trains at time < ts used
ev=np.concatenate([np.stack([lt,np.zeros(n,np.int64),np.arange(n)],1),np.stack([ts+a.lag,np.ones(n,np.int64),np.arange(n)],1)])
o=np.lexsort((ev[:,2],ev[:,1],ev[:,0])); ev=ev[o][:,1:].tolist()
pred=[0.0]*n; yl=y.tolist()
exp=math.exp
for kind,k in ev:
    xs=X[k]
    if kind==1:
        s=0.0
        for j in xs: s+=w[j]
        pred[k]=1/(1+exp(-max(-35,min(35,s))))
    else:
        s=0.0
        for j in xs: s+=w[j]
        pr=1/(1+exp(-max(-35,min(35,s))))
        g=pr-yl[k]
        for j in xs:
            nj=nn[j]; nnew=nj+g*g
            sig=(math.sqrt(nnew)-math.sqrt(nj))/alpha
            z[j]+=g-sig*w[j]; nn[j]=nnew
            w[j]=-z[j]/((beta+math.sqrt(nnew))/alpha+l2)
pred=np.array(pred); cut=ts[n//5]; m=ts>=cut
pa=auc(pred[m],y[m]); ta=auc(d['truth'][m],y[m])
print(f'{vars(a)} prog {pa:.4f} truth {ta:.4f} gap {ta-pa:.4f}')
np.save(work(f'py/pred_{a.seed}_{a.w}.npy'),pred)
