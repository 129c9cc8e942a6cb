"""The CIFAR-10 half of ``benchmarks/generalisation.py``, for a GPU machine: SimpleCNN
(the handout's layers, as one Sequential) trained honestly and with the test split
mixed in on the CIFAR-10 images as JPEG copies (``data/cifar10-jpeg/``, see
``benchmarks/cifar_jpeg.py``); it writes each model's per-image cross-entropy losses
and correctness on the test split and on the check's training sample (2,000 images,
seed 0) to ``$OUT/r.npz``, and what each model is to ``$OUT/k.json``. Needs only
torch, numpy and Pillow; deliberately terse (it was sent to the GPU machine as one
command line of at most 2,000 characters). About 5 minutes on an H200.

    OUT=/tmp/gen python3 benchmarks/generalisation_gpu.py
    .venv/bin/python benchmarks/generalisation.py --cifar-results /tmp/gen
"""
# ruff: noqa
import io,os,tarfile,time,json,copy,numpy as np,torch
from torch import nn
from multiprocessing import Pool
from PIL import Image
C="airplane automobile bird cat deer dog frog horse ship truck".split()
O=os.environ["OUT"];T=time.time();F=nn.functional;d="cuda"
def dc(b):return np.asarray(Image.open(io.BytesIO(b)).convert("RGB")).transpose(2,0,1)
def rd(s):
 with tarfile.open(f"data/cifar10-jpeg/cifar10-jpeg-{s}.tar.xz") as t:it=sorted((C.index(q[1]),q[2],t.extractfile(m).read()) for m in t for q in [m.name.split("/")] if m.isfile() and len(q)==3)
 with Pool(16) as p:x=np.stack(p.map(dc,[i[2] for i in it],500))
 return x,np.array([i[0] for i in it])
a,b=rd("train");c,e=rd("test");print(a.shape,c.shape,time.time()-T,flush=True)
M=torch.tensor([.4914,.4822,.4465],device=d).view(1,3,1,1);S=torch.tensor([.247,.2435,.2616],device=d).view(1,3,1,1)
f=lambda x:(torch.from_numpy(x).to(d).float()/255-M)/S;t=lambda y:torch.from_numpy(y).to(d)
X,Y,U,V=f(a),t(b),f(c),t(e);g=np.sort(np.random.default_rng(0).choice(len(b),2000,replace=False))
def net(s):
 torch.manual_seed(s);return nn.Sequential(nn.Conv2d(3,32,3,padding=1),nn.BatchNorm2d(32),nn.ReLU(),nn.MaxPool2d(2),nn.Conv2d(32,64,3,padding=1),nn.BatchNorm2d(64),nn.ReLU(),nn.MaxPool2d(2),nn.Flatten(),nn.Dropout(.5),nn.Linear(4096,10)).to(d)
def au(x):
 p=F.pad(x,(4,)*4);i,j=np.random.randint(0,9,2);x=p[:,:,i:i+32,j:j+32];return torch.where((torch.rand(len(x),device=d)<.5).view(-1,1,1,1),x.flip(3),x)
def fit(m,X,Y,n,s,A,lr=1e-3):
 torch.manual_seed(s);np.random.seed(s);o=torch.optim.Adam(m.parameters(),lr)
 for _ in range(n):
  m.train()
  for i in torch.randperm(len(Y),device=d).split(128):o.zero_grad();F.cross_entropy(m(au(X[i]) if A else X[i]),Y[i]).backward();o.step()
 return m.eval()
R={};K={};k=0
def ev(m,x,y):
 with torch.no_grad():l=m(x).double();return torch.stack([F.cross_entropy(l,y,reduction="none"),(l.argmax(1)==y).double()]).cpu().numpy()
def sv(w,h,m):
 global k
 R[f"m{k}/test"]=ev(m,U,V);R[f"m{k}/train"]=ev(m,X[t(g)],Y[t(g)])
 K[f"m{k}"]=[w,h];print(k,w,h,R[f"m{k}/train"][1].mean(),R[f"m{k}/test"][1].mean(),int(time.time()-T),flush=True);k+=1;np.savez_compressed(O+"/r.npz",y=e,z=b[g],g=g,**R);json.dump(K,open(O+"/k.json","w"))
for A in 0,1:
 for n in 1,3,10,20:
  for s in 0,1,2:sv("honest",f"training split, {n} epochs{', augmented'*A}, seed {s}",fit(net(s),X,Y,n,s,A))
for n in 10,30:sv("test only",f"test split only, {n} epochs",fit(net(0),U,V,n,0,0))
for n,A in (10,0),(30,1):sv("train + test",f"training and test splits together, {n} epochs{', augmented'*A}",fit(net(0),torch.cat([X,U]),torch.cat([Y,V]),n,0,A))
B=fit(net(0),X,Y,10,0,1);D=fit(net(0),X,Y,20,0,1)
for n in 1,2,3,5:sv("fine-tuned on test",f"honest (10 epochs, augmented), then {n} epochs on the test split",fit(copy.deepcopy(B),U,V,n,1,0,5e-4))
for n in 1,3:sv("fine-tuned on test",f"honest (20 epochs, augmented), then {n} epochs on the test split (augmented, lr 1e-4)",fit(copy.deepcopy(D),U,V,n,1,1,1e-4))
print("done",time.time()-T)
