import numpy as np, sys
from common import *
seed=int(sys.argv[1]); w=int(sys.argv[2])
d=D(seed,w); z=np.load(work('py/decomp1_%d.npz'%seed))
n=len(d['ts']); ts=d['ts']; u=d['u']; i=d['i']; c=d['c']
nu,ni,nc=int(d['nu']),int(d['ni']),int(d['nc'])
L=true_logits(d)
cs,sn=drift_phase(ts)
ucnt=np.bincount(u,minlength=nu)
hu=np.where(ucnt>=300)[0]
coef=z['coef'].reshape(nu,nc,3); J=z['J'].copy(); Jknown=z['k']>0
ucc=np.bincount(u*nc+c,None,nu*nc).reshape(nu,nc)
full_u=hu[(ucc[hu]>=30).all(1)]
V=coef[full_u][:,:,2]; rows=[]; inv=np.zeros(len(full_u),int)
for k in range(len(full_u)):
    for r,row in enumerate(rows):
        if np.abs(V[k]-row).max()<1e-3: inv[k]=r; break
    else: rows.append(V[k]); inv[k]=len(rows)-1
rows=np.array([V[inv==r].mean(0) for r in range(len(rows))])
print('distinct A1 rows among full heavy users',len(rows), np.bincount(inv))
S=len(rows)
A1=rows; A0=np.zeros((S,nc))
for s in range(S):
    A0[s]=coef[full_u[inv==s]][:,:,1].mean(0)
M=coef[full_u][:,:,0]-A0[inv]
Mr=M-M.mean(1,keepdims=True)
delta=Mr.mean(0); print('per-category gauge',np.round(delta,3), 'resid',np.abs(Mr-delta).max())
cat_of_item=np.zeros(ni,int); cat_of_item[i]=c
J=J+delta[cat_of_item]*Jknown
coef[:,:,0]-=delta[None,:]
seg=-np.ones(nu,int); ub=np.full(nu,np.nan)
for uu in hu:
    have=ucc[uu]>=30
    errs=[np.abs(coef[uu,have,2]-A1[s,have]).max() for s in range(S)]
    s=int(np.argmin(errs))
    if errs[s]>1e-3: print('unmatched heavy user',uu,errs[s]); continue
    v=coef[uu,have,0]-A0[s,have]
    assert v.std()<1e-3, v.std()
    seg[uu]=s; ub[uu]=v.mean()
# iterate: determine J for items from known users, users from known items
for it in range(6):
    aff=np.where(seg[u]>=0, A0[np.maximum(seg[u],0),c]*cs + A1[np.maximum(seg[u],0),c]*sn, 0)
    ku=seg[u]>=0
    r=L-ub[u]-aff
    s_=np.bincount(i[ku],r[ku],ni); k_=np.bincount(i[ku],None,ni)
    newJ=(k_>0)&~Jknown
    J[newJ]=s_[newJ]/k_[newJ]; Jknown|=k_>0
    # users unknown with >=2 impressions on known items
    m=(seg[u]<0)&Jknown[i]
    idx=np.where(m)[0]
    best_var=np.full(nu,np.inf); best_s=-np.ones(nu,int); best_ub=np.zeros(nu)
    cntm=np.bincount(u[idx],None,nu)
    for s in range(S):
        r=L[idx]-J[i[idx]]-(A0[s,c[idx]]*cs[idx]+A1[s,c[idx]]*sn[idx])
        m1=np.bincount(u[idx],r,nu); m2=np.bincount(u[idx],r*r,nu)
        mean=m1/np.maximum(cntm,1); var=m2/np.maximum(cntm,1)-mean**2
        better=(cntm>=2)&(var<best_var)
        best_var[better]=var[better]; best_s[better]=s; best_ub[better]=mean[better]
    ok=(best_s>=0)&(best_var<1e-8)
    seg[ok]=best_s[ok]; ub[ok]=best_ub[ok]
    print(it,'users known',(seg>=0).sum(),'imps with known user',(seg[u]>=0).mean(),'items known',Jknown.sum(),'imps with known item',Jknown[i].mean())
# normalize: ub mean 0 over known users (weighted by user, population)
known=seg>=0
shift=ub[known].mean(); ub-=shift; J+=shift
print('ub sd',ub[known].std(),'A0 sd',A0.std(),'A1 sd',A1.std(),'seg counts',np.bincount(seg[known]))
# verify reconstruction where everything known
aff=A0[np.maximum(seg[u],0),c]*cs + A1[np.maximum(seg[u],0),c]*sn
full=known[u]&Jknown[i]
print('recon max err',np.abs((J[i]+ub[u]+aff-L)[full]).max(),'coverage',full.mean())
np.savez(work('py/comp_%d.npz'%seed),J=J,Jknown=Jknown,ub=ub,seg=seg,A0=A0,A1=A1)
