"""PyTorch CPU peer of `dpt train`: the same network, cost, init and plain SGD, one thread.
Prints one JSON line per epoch with the training seconds (the step loop only, as dpt reports
it) and the test accuracy. Needs Debian's python3-torch and python3-numpy; installs nothing."""
import json
import time

import torch
import torch.nn.functional as F

import mnist_idx

a = mnist_idx.epoch_args()

torch.set_num_threads(1)
torch.manual_seed(a.seed)
x, y, tx, ty = (torch.from_numpy(v) for v in mnist_idx.load(a.data_dir))
sizes = [int(s) for s in a.sizes.split(',')]
act = {'sigmoid': torch.nn.Sigmoid, 'relu': torch.nn.ReLU, 'tanh': torch.nn.Tanh}[a.activation]
layers = []
for i in range(len(sizes) - 1):
    lin = torch.nn.Linear(sizes[i], sizes[i + 1])
    with torch.no_grad():
        # gaussian: N(0,1) everywhere (Nielsen ch. 1); scaled: weights N(0, 1/n_in) (ch. 3)
        lin.weight.normal_(0, 1 if a.init == 'gaussian' else sizes[i] ** -0.5)
        lin.bias.normal_(0, 1)
    layers.append(lin)
    if i < len(sizes) - 2:
        layers.append(act())
if a.cost == 'quadratic':
    layers.append(torch.nn.Sigmoid())
net = torch.nn.Sequential(*layers)
opt = torch.optim.SGD(net.parameters(), lr=a.eta)
onehot = F.one_hot(y, sizes[-1]).float()

for epoch in range(1, a.epochs + 1):
    perm = torch.randperm(len(x))
    t0 = time.perf_counter()
    for s in range(0, len(x), a.batch):
        idx = perm[s:s + a.batch]
        xb = x.index_select(0, idx)
        out = net(xb)
        if a.cost == 'quadratic':
            # C = ½‖a − y‖² averaged over the batch: the update is Nielsen's (η/m) Σ ∇C_x
            loss = 0.5 * (out - onehot.index_select(0, idx)).pow(2).sum() / len(idx)
        else:
            loss = F.cross_entropy(out, y.index_select(0, idx))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        correct = int((net(tx).argmax(1) == ty).sum())
    print(json.dumps({'peer': 'pytorch', 'epoch': epoch, 'seconds': seconds, 'testCorrect': correct,
                      'testTotal': len(tx), 'torch': torch.__version__}), flush=True)
