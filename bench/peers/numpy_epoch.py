"""Vectorised numpy peer of `dpt train`: Nielsen's network.py with each mini-batch as one
matrix (float32), the same cost, init and plain SGD. One BLAS thread (the caller sets
OPENBLAS_NUM_THREADS=1). Prints one JSON line per epoch like torch_epoch.py."""
import json
import time

import numpy as np

import mnist_idx

a = mnist_idx.epoch_args()

rng = np.random.default_rng(a.seed)
x, y, tx, ty = mnist_idx.load(a.data_dir)
sizes = [int(s) for s in a.sizes.split(',')]
W = [(rng.standard_normal((o, c)) * (1 if a.init == 'gaussian' else c ** -0.5)).astype(np.float32)
     for c, o in zip(sizes[:-1], sizes[1:])]
bs = [rng.standard_normal(o).astype(np.float32) for o in sizes[1:]]
eye = np.eye(sizes[-1], dtype=np.float32)
L = len(W)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def act(z):
    if a.activation == 'sigmoid':
        return sigmoid(z)
    if a.activation == 'relu':
        return np.maximum(z, 0)
    return np.tanh(z)


def act_prime(h):
    """act'(z) through h = act(z)"""
    if a.activation == 'sigmoid':
        return h * (1 - h)
    if a.activation == 'relu':
        return (h > 0).astype(np.float32)
    return 1 - h * h


def forward(xb):
    hs = [xb]
    for i in range(L):
        z = hs[-1] @ W[i].T + bs[i]
        if i < L - 1:
            hs.append(act(z))
        elif a.cost == 'quadratic':
            hs.append(sigmoid(z))
        else:
            hs.append(z)
    return hs


for epoch in range(1, a.epochs + 1):
    perm = rng.permutation(len(x))
    t0 = time.perf_counter()
    for s in range(0, len(x), a.batch):
        idx = perm[s:s + a.batch]
        hs = forward(x[idx])
        out = hs[-1]
        if a.cost == 'quadratic':
            delta = (out - eye[y[idx]]) * out * (1 - out)
        else:
            e = np.exp(out - out.max(1, keepdims=True))
            delta = e / e.sum(1, keepdims=True) - eye[y[idx]]
        k = np.float32(a.eta / len(idx))
        for i in range(L - 1, -1, -1):
            dW = delta.T @ hs[i]
            db = delta.sum(0)
            if i > 0:
                delta = (delta @ W[i]) * act_prime(hs[i])
            W[i] -= k * dW
            bs[i] -= k * db
    seconds = time.perf_counter() - t0
    correct = int((forward(tx)[-1].argmax(1) == ty).sum())
    print(json.dumps({'peer': 'numpy', 'epoch': epoch, 'seconds': seconds, 'testCorrect': correct,
                      'testTotal': len(tx), 'numpy': np.__version__}), flush=True)
