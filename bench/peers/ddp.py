#!/usr/bin/env python3
"""PyTorch DistributedDataParallel (gloo) peer for bench/ws.ts: the same MNIST nets and SGD, one
global batch split over `--world` processes on 127.0.0.1, gradients averaged by DDP's allreduce.
Measures a partial epoch (--steps after --burn-in) on rank 0 and prints one JSON line with the
median seconds per step over --reps chunks. Needs torch (Debian: apt-get install -y python3-torch).
"""
import argparse, json, os, struct, sys, time


def read_idx(path):
    with open(path, 'rb') as f:
        data = f.read()
    magic, = struct.unpack('>I', data[:4])
    ndim = magic & 0xff
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def build(sizes, activation, cost):
    import torch.nn as nn
    act = {'sigmoid': nn.Sigmoid, 'relu': nn.ReLU, 'tanh': nn.Tanh}[activation]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i + 2 < len(sizes):
            layers.append(act())
    if cost == 'quadratic':
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def worker(rank, a, port, out):
    import torch, torch.distributed as dist, torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.set_num_threads(1)
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=a.world)
    (n, r, c), px = read_idx(os.path.join(a.data_dir, 'train-images-idx3-ubyte'))
    _, lb = read_idx(os.path.join(a.data_dir, 'train-labels-idx1-ubyte'))
    n = min(n, 50000)
    x = torch.frombuffer(bytearray(px[:n * r * c]), dtype=torch.uint8).view(n, r * c).float() / 255
    y = torch.frombuffer(bytearray(lb[:n]), dtype=torch.uint8).long()
    torch.manual_seed(1)
    model = DDP(build(a.sizes, a.activation, a.cost))
    opt = torch.optim.SGD(model.parameters(), lr=a.eta)
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(n, generator=g)
    # DDP averages gradients over ranks; each rank averages over its shard, so with equal shards
    # one step is plain SGD on the global batch (Nielsen's eta/m scaling).
    shard = a.batch // a.world
    if a.loader == 'dataloader':
        # what a DDP user writes: a DistributedSampler hands each rank its part of every epoch
        from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
        ds = TensorDataset(x, y)
        sampler = DistributedSampler(ds, num_replicas=a.world, rank=rank, shuffle=True, seed=1, drop_last=True)
        loader = DataLoader(ds, batch_size=shard, sampler=sampler, drop_last=True)

        def epochs_of_batches():
            # the epoch loop a DDP user writes: a new shuffle per epoch, for as many as the steps need
            epoch = 0
            while True:
                sampler.set_epoch(epoch)
                yield from loader
                epoch += 1
        batches = epochs_of_batches()
    times = []
    total = a.burn_in + a.steps
    for s in range(total):
        if s == a.burn_in:
            dist.barrier()
            t0 = time.perf_counter()
            mark = t0
        if a.loader == 'dataloader':
            xb, yb = next(batches)
        else:
            start = (s * a.batch) % (n - a.batch) + rank * shard
            idx = perm[start:start + shard]
            xb, yb = x[idx], y[idx]
        opt.zero_grad()
        outp = model(xb)
        if a.cost == 'quadratic':
            loss = 0.5 * ((outp - F.one_hot(yb, 10).float()) ** 2).sum(1).mean()
        else:
            loss = F.cross_entropy(outp, yb)
        loss.backward()
        opt.step()
        if s >= a.burn_in and (s - a.burn_in + 1) % max(1, a.steps // a.reps) == 0:
            now = time.perf_counter()
            times.append((now - mark) / max(1, a.steps // a.reps))
            mark = now
    dist.barrier()
    if rank == 0:
        times.sort()
        out.put({'secondsPerStep': times[len(times) // 2], 'steps': a.steps, 'burnIn': a.burn_in, 'world': a.world, 'loader': a.loader,
                 'torch': torch.__version__, 'finalLoss': float(loss)})
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--sizes', default='784,30,10')
    p.add_argument('--activation', default='sigmoid')
    p.add_argument('--cost', default='quadratic')
    p.add_argument('--eta', type=float, default=3.0)
    p.add_argument('--batch', type=int, default=10)
    p.add_argument('--world', type=int, default=2)
    p.add_argument('--steps', type=int, default=300)
    p.add_argument('--burn-in', type=int, default=20)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--loader', choices=['dataloader', 'index'], default='dataloader',
                   help='dataloader: DistributedSampler + DataLoader (idiomatic); index: slice a preloaded tensor (lean)')
    p.add_argument('--data-dir', required=True)
    p.add_argument('--check', action='store_true', help='only check that torch with gloo is importable')
    a = p.parse_args()
    try:
        import torch, torch.distributed as dist, torch.multiprocessing as mp
        if not dist.is_gloo_available():
            raise ImportError('torch was built without gloo')
    except ImportError as e:
        print(json.dumps({'error': f'PyTorch DDP peer unavailable ({e}): on Debian, apt-get install -y python3-torch'}))
        return 3
    if a.check:
        print(json.dumps({'ok': True, 'torch': torch.__version__}))
        return 0
    a.sizes = [int(s) for s in a.sizes.split(',')]
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    ctx = mp.get_context('spawn')
    out = ctx.SimpleQueue()
    procs = [ctx.Process(target=worker, args=(r, a, port, out)) for r in range(a.world)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    if any(pr.exitcode != 0 for pr in procs):
        print(json.dumps({'error': 'a DDP process failed'}))
        return 1
    print(json.dumps(out.get()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
