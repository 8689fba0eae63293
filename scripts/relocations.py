#!/usr/bin/env python3
# Where the relative relocations of a binary point, and where they sit, by crate: the start-up cost
# of a position-independent `mogplex` is mostly the loader applying these (docs/contributing.md).
#   scripts/relocations.py target/release/mogplex        SHOW=zbus scripts/relocations.py …  (one crate in detail)
# Needs readelf, nm and c++filt (binutils). A place is attributed to the nearest named symbol before it,
# so anonymous constants after a named one count for that one: read the figures as a rough census.
import subprocess, sys, bisect, re, collections
B=sys.argv[1]
syms=[]
for l in subprocess.run(['nm','-n','--defined-only',B],capture_output=True,text=True).stdout.splitlines():
    p=l.split(None,2)
    if len(p)==3:
        syms.append((int(p[0],16),p[1],p[2]))
addrs=[s[0] for s in syms]
def sym(a):
    i=bisect.bisect_right(addrs,a)-1
    return syms[i][2] if i>=0 else '?'
dem={}
def demangle(names):
    out=subprocess.run(['c++filt'],input='\n'.join(names),capture_output=True,text=True).stdout.splitlines()
    return dict(zip(names,out))
rel=subprocess.run(['readelf','-rW',B],capture_output=True,text=True).stdout.splitlines()
pairs=[]
for l in rel:
    p=l.split()
    if len(p)>=4 and p[2]=='R_X86_64_RELATIVE':
        pairs.append((int(p[0],16),int(p[3],16)))
print('relative relocs',len(pairs))
tnames=[sym(t) for _,t in pairs]
lnames=[sym(o) for o,_ in pairs]
d=demangle(list(set(tnames+lnames)))
def crate(n):
    n=d.get(n,n)
    n=re.sub(r'^(_<|<)+','',n)
    m=re.match(r'([A-Za-z_][A-Za-z0-9_]*)',n)
    return m.group(1) if m else n[:20]
c=collections.Counter(crate(n) for n in tnames)
print('by target crate:'); [print(f'  {v:6} {k}') for k,v in c.most_common(30)]
c=collections.Counter(crate(n) for n in lnames)
print('by location symbol crate:'); [print(f'  {v:6} {k}') for k,v in c.most_common(30)]
import os
want=os.environ.get('SHOW')
if want:
    c=collections.Counter(d.get(n,n)[:110] for n in lnames if crate(n)==want)
    print('locations in',want); [print(f'  {v:6} {k}') for k,v in c.most_common(15)]
    c=collections.Counter(d.get(t,t)[:110] for o,t in zip(lnames,tnames) if crate(o)==want)
    print('their targets'); [print(f'  {v:6} {k}') for k,v in c.most_common(15)]
cs=sum(1 for n in lnames if 'CALLSITE' in d.get(n,n))
print('locations in tracing callsite statics:', cs)
