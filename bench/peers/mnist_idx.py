"""Reads the MNIST IDX files (raw or .gz) the way dpt does: the first 50,000 training images
train, the 10,000 t10k images test; pixels become float32 x/255."""
import argparse
import gzip
import os
import struct

import numpy as np


def _open(path):
    if os.path.exists(path):
        return open(path, 'rb')
    if os.path.exists(path + '.gz'):
        return gzip.open(path + '.gz', 'rb')
    raise SystemExit(f'no MNIST file {path} (or {path}.gz): pass --data-dir DIR with the four IDX files')


def read_idx(path):
    with _open(path) as f:
        data = f.read()
    magic = struct.unpack('>I', data[:4])[0]
    ndim = magic & 0xff
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, train_count=50_000):
    x = read_idx(os.path.join(data_dir, 'train-images-idx3-ubyte'))
    y = read_idx(os.path.join(data_dir, 'train-labels-idx1-ubyte'))
    tx = read_idx(os.path.join(data_dir, 't10k-images-idx3-ubyte'))
    ty = read_idx(os.path.join(data_dir, 't10k-labels-idx1-ubyte'))
    scale = np.float32(1 / 255)
    return (x[:train_count].reshape(train_count, -1).astype(np.float32) * scale, y[:train_count].astype(np.int64),
            tx.reshape(len(tx), -1).astype(np.float32) * scale, ty.astype(np.int64))


def epoch_args():
    """The flags every one-epoch peer script takes (the same names and defaults as dpt train)."""
    p = argparse.ArgumentParser()
    p.add_argument('--data-dir', required=True)
    p.add_argument('--sizes', default='784,30,10')
    p.add_argument('--activation', default='sigmoid', choices=['sigmoid', 'relu', 'tanh'])
    p.add_argument('--cost', default='quadratic', choices=['quadratic', 'cross-entropy'])
    p.add_argument('--init', default='gaussian', choices=['gaussian', 'scaled'])
    p.add_argument('--batch', type=int, default=10)
    p.add_argument('--eta', type=float, default=3.0)
    p.add_argument('--epochs', type=int, default=1)
    p.add_argument('--seed', type=int, default=1)
    return p.parse_args()
