import json, sys, numpy as np, math
from common import work
def load(seed, window_ms):
    imps=[]; clicks={}
    users={}; items={}; cats={}
    for line in open(work(f'g{seed}.jsonl')):
        e=json.loads(line)
        k=e['event']
        if k=='impression':
            u=users.setdefault(e['user'],len(users)); i=items.setdefault(e['item'],len(items)); c=cats.setdefault(e['category'],len(cats))
            pb = 0 if e['price']<1 else 1+min(62,math.floor(2*math.log2(e['price'])))
            imps.append((e['ts'],u,i,c,pb,e['price']))
        elif k=='click':
            u=users.setdefault(e['user'],len(users)); i=items.setdefault(e['item'],len(items))
            clicks.setdefault((u,i),[]).append(e['ts'])
    truth=[json.loads(l)['p_click'] for l in open(work(f'g{seed}.truth.jsonl'))]
    a=np.array([x[:5] for x in imps],dtype=np.int64)
    price=np.array([x[5] for x in imps])
    # attribution: each click credited to earliest open impression of its key with t_imp<=t_click<t_imp+w
    n=len(imps); label=np.zeros(n,np.int8); ltime=a[:,0]+window_ms
    bykey={}
    for idx,(ts,u,i,c,pb,_) in enumerate(imps): bykey.setdefault((u,i),[]).append(idx)
    for key,cl in clicks.items():
        open_=list(bykey.get(key,[]))
        for tc in cl:
            for j,idx in enumerate(open_):
                if a[idx,0]<=tc<a[idx,0]+window_ms:
                    label[idx]=1; ltime[idx]=tc; open_.pop(j); break
    return dict(ts=a[:,0],u=a[:,1],i=a[:,2],c=a[:,3],pb=a[:,4],price=price,label=label,ltime=ltime,truth=np.array(truth),nu=len(users),ni=len(items),nc=len(cats))
if __name__=='__main__':
    seed=int(sys.argv[1]); w=int(sys.argv[2])
    d=load(seed,w)
    np.savez(work(f'py/d{seed}_{w}.npz'),**d)
    print(len(d['ts']), d['label'].mean(), d['nu'], d['ni'])
