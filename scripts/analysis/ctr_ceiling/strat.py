import numpy as np, sys
from common import *
d=D(int(sys.argv[1]),int(sys.argv[2]))
n=len(d['ts']); cut=d['ts'][n//5]; m=d['ts']>=cut
y=d['label']; t=d['truth']
print('truth auc last80', auc(t[m],y[m]), 'n',m.sum(), 'ctr', y[m].mean())
# prior count of user impressions
u=d['u']; prior=np.zeros(n,int); cnt={}
for k in range(n):
    prior[k]=cnt.get(u[k],0); cnt[u[k]]=prior[k]+1
np.save(work('py/prior%s.npy'%sys.argv[1]),prior)
for lo,hi in [(0,1),(1,5),(5,20),(20,100),(100,10**9)]:
    s=m&(prior>=lo)&(prior<hi)
    print(f'user prior [{lo},{hi}) share {s.sum()/m.sum():.3f} truth auc {auc(t[s],y[s]):.4f}')
