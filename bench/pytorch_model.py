#!/usr/bin/env python3
"""PyTorch anchor for `npm run bench:model`: the same Video Swin tasks in PyTorch eager on this machine.

A plain re-implementation of the official SwinTransformer3D + I3D head (the official module is not
shipped here), written from the fact sheet; `--task check` runs it on the visible parity fixture
(checkpoint.pth, io.safetensors) and compares its logits with the official ones, so the timed module
is known to compute the same function. Prints one line `@@result {json}`: seconds of each timed run
per sub-task and the peak RSS.

    python3 bench/pytorch_model.py --task infer16|infer32|train|fixture|check [--threads 2] [--runs 2]
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SWIN_T = dict(patch_size=(2, 4, 4), in_chans=3, embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
              window_size=(8, 7, 7), mlp_ratio=4.0, qkv_bias=True, qk_scale=None, drop_path_rate=0.1, patch_norm=True)


def effective_window(grid, window, shift):
    win, sh = list(window), list(shift)
    for i in range(3):
        if grid[i] <= window[i]:  # `<=`, as the official get_window_size
            win[i], sh[i] = grid[i], 0
    return tuple(win), tuple(sh)


def partition(x, w):
    """[B, D, H, W, C] -> [B * nW, N, C], windows and tokens in (d, h, w) order."""
    b, d, h, wd, c = x.shape
    x = x.view(b, d // w[0], w[0], h // w[1], w[1], wd // w[2], w[2], c)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, w[0] * w[1] * w[2], c)


def reverse(windows, w, b, d, h, wd):
    x = windows.view(b, d // w[0], h // w[1], wd // w[2], w[0], w[1], w[2], -1)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, d, h, wd, -1)


def region_ids(length, window, shift):
    if shift == 0:
        return torch.zeros(length, dtype=torch.long)
    p = torch.arange(length)
    return torch.where(p < length - window, 0, torch.where(p < length - shift, 1, 2))


def shift_mask(padded, window, shift):
    """[nW, N, N] of 0 (same region) and -100 (different regions)."""
    rd, rh, rw = (region_ids(padded[i], window[i], shift[i]) for i in range(3))
    ids = (rd[:, None, None] * 9 + rh[None, :, None] * 3 + rw[None, None, :]).float()
    ids = partition(ids[None, ..., None], window).squeeze(-1)  # [nW, N]
    diff = ids[:, None, :] - ids[:, :, None]
    return diff.ne(0).float() * -100.0


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, dim, heads, window, qkv_bias, qk_scale):
        super().__init__()
        self.heads = heads
        self.scale = qk_scale or (dim // heads) ** -0.5
        wd, wh, ww = window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wd - 1) * (2 * wh - 1) * (2 * ww - 1), heads))
        coords = torch.stack(torch.meshgrid(torch.arange(wd), torch.arange(wh), torch.arange(ww), indexing='ij')).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
        index = (rel[..., 0] + wd - 1) * (2 * wh - 1) * (2 * ww - 1) + (rel[..., 1] + wh - 1) * (2 * ww - 1) + rel[..., 2] + ww - 1
        self.register_buffer('relative_position_index', index)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask):
        b_, n, c = x.shape
        qkv = self.qkv(x).reshape(b_, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        index = self.relative_position_index[:n, :n].reshape(-1)  # the official index[:N, :N] of the full window
        attn = attn + self.relative_position_bias_table[index].reshape(n, n, -1).permute(2, 0, 1)[None]
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(b_ // nw, nw, self.heads, n, n) + mask[None, :, None]).view(b_, self.heads, n, n)
        out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b_, n, c)
        return self.proj(out)


class Block(nn.Module):
    def __init__(self, dim, heads, window, shift, mlp_ratio, qkv_bias, qk_scale, drop_path):
        super().__init__()
        self.window, self.shift, self.drop_path = window, shift, drop_path
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, window, qkv_bias, qk_scale)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def path(self, x):
        if not self.training or self.drop_path == 0:
            return x
        keep = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) >= self.drop_path
        return x * keep / (1 - self.drop_path)

    def forward(self, x):
        b, d, h, w, c = x.shape
        window, shift = effective_window((d, h, w), self.window, self.shift)
        y = self.norm1(x)
        pd, ph, pw = (math.ceil(s / k) * k - s for s, k in zip((d, h, w), window))
        y = F.pad(y, (0, 0, 0, pw, 0, ph, 0, pd))  # padded tokens are zeros, not masked
        dp, hp, wp = d + pd, h + ph, w + pw
        mask = None
        if any(shift):
            y = torch.roll(y, shifts=tuple(-s for s in shift), dims=(1, 2, 3))
            mask = shift_mask((dp, hp, wp), window, shift)
        y = reverse(self.attn(partition(y, window), mask), window, b, dp, hp, wp)
        if any(shift):
            y = torch.roll(y, shifts=shift, dims=(1, 2, 3))
        x = x + self.path(y[:, :d, :h, :w].contiguous())
        return x + self.path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, :, 0::2, 0::2], x[:, :, 1::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class Layer(nn.Module):
    def __init__(self, dim, depth, heads, window, mlp_ratio, qkv_bias, qk_scale, drop_paths, downsample):
        super().__init__()
        shift = tuple(k // 2 for k in window)
        self.blocks = nn.ModuleList(
            Block(dim, heads, window, (0, 0, 0) if j % 2 == 0 else shift, mlp_ratio, qkv_bias, qk_scale, drop_paths[j])
            for j in range(depth))
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class PatchEmbed(nn.Module):
    def __init__(self, patch, in_chans, dim, norm):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv3d(in_chans, dim, kernel_size=patch, stride=patch)
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x):
        _, _, t, h, w = x.shape
        pads = [(-s) % p for s, p in zip((t, h, w), self.patch)]
        x = self.proj(F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0])))
        x = x.permute(0, 2, 3, 4, 1)  # [B, D, H, W, C]
        return self.norm(x) if self.norm is not None else x


class Backbone(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        depths = cfg['depths']
        rates = torch.linspace(0, cfg['drop_path_rate'], sum(depths)).tolist()
        self.patch_embed = PatchEmbed(tuple(cfg['patch_size']), cfg['in_chans'], cfg['embed_dim'], cfg['patch_norm'])
        self.layers = nn.ModuleList()
        for i, depth in enumerate(depths):
            self.layers.append(Layer(cfg['embed_dim'] * 2 ** i, depth, cfg['num_heads'][i], tuple(cfg['window_size']),
                                     cfg['mlp_ratio'], cfg['qkv_bias'], cfg['qk_scale'], rates[sum(depths[:i]):sum(depths[:i + 1])],
                                     i < len(depths) - 1))
        self.norm = nn.LayerNorm(cfg['embed_dim'] * 2 ** (len(depths) - 1))

    def forward(self, x):
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class Head(nn.Module):
    def __init__(self, dim, classes):
        super().__init__()
        self.fc_cls = nn.Linear(dim, classes)

    def forward(self, x):
        return self.fc_cls(x.mean(dim=(1, 2, 3)))


class Recognizer(nn.Module):
    def __init__(self, cfg, classes):
        super().__init__()
        self.backbone = Backbone(cfg)
        self.cls_head = Head(cfg['embed_dim'] * 2 ** (len(cfg['depths']) - 1), classes)

    def forward(self, x):
        return self.cls_head(self.backbone(x))


def fixtures_dir():
    for path in (os.environ.get('VSWIN_PARITY_FIXTURES'), os.path.join(os.path.dirname(__file__), '../../shared/fixtures/parity')):
        if path and os.path.exists(os.path.join(path, 'manifest.json')):
            return path
    sys.exit('parity fixtures not found (set VSWIN_PARITY_FIXTURES)')


def fixture_model():
    manifest = json.load(open(os.path.join(fixtures_dir(), 'manifest.json')))
    cfg = dict(SWIN_T, **manifest['config']['backbone'])
    return Recognizer(cfg, manifest['config']['num_classes'])


def read_safetensors(path):
    with open(path, 'rb') as f:
        size = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for key, spec in header.items():
        if key == '__metadata__':
            continue
        begin, end = spec['data_offsets']
        dtype = {'F32': torch.float32, 'I64': torch.int64, 'I32': torch.int32}[spec['dtype']]
        out[key] = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(spec['shape'])
    return out


CPU = {}


def timed(runs, fn, label=None):
    """Wall seconds of each run; process CPU seconds (all threads) go to CPU[label]."""
    seconds, cpu = [], []
    for _ in range(runs):
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        seconds.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    if label:
        CPU[label] = cpu
    return seconds


def train_step(model, optimizer, x, labels, update=True):
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), labels)
    loss.backward()
    if update:
        optimizer.step()
    return loss.item()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--task', required=True, choices=['infer16', 'infer32', 'train', 'fixture', 'check'])
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--runs', type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    seconds = {}
    result = {}
    if args.task == 'check':
        model = fixture_model().eval()
        state = torch.load(os.path.join(fixtures_dir(), 'checkpoint.pth'), map_location='cpu')
        state = state.get('state_dict', state)
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith('relative_position_index')]
        if missing or unexpected:
            sys.exit(f'checkpoint does not fit: missing {missing[:4]}, unexpected {unexpected[:4]}')
        io = read_safetensors(os.path.join(fixtures_dir(), 'io.safetensors'))
        with torch.no_grad():
            logits = model(io['input'])
        ratio = ((logits - io['logits']).abs() / (1e-4 + 1e-4 * io['logits'].abs())).max().item()
        result['check'] = {'worst_ratio': ratio, 'ok': ratio <= 1}
    elif args.task in ('infer16', 'infer32'):
        frames = 16 if args.task == 'infer16' else 32
        model = Recognizer(SWIN_T, 400).eval()
        x = torch.randn(1, 3, frames, 224, 224)
        with torch.no_grad():
            model(x)  # warm-up
            seconds['infer'] = timed(args.runs, lambda: model(x), 'infer')
    elif args.task == 'train':
        model = Recognizer(SWIN_T, 400).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.02)
        x, labels = torch.randn(1, 3, 8, 112, 112), torch.tensor([7])
        train_step(model, optimizer, x, labels)
        seconds['train'] = timed(max(3, args.runs), lambda: train_step(model, optimizer, x, labels), 'train')
    else:
        model = fixture_model().train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.02)
        x, labels = torch.randn(8, 3, 9, 58, 50), torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
        train_step(model, optimizer, x, labels)
        seconds['fwdbwd'] = timed(3 * args.runs, lambda: train_step(model, optimizer, x, labels, update=False), 'fwdbwd')
        seconds['adamw'] = timed(3 * args.runs, lambda: train_step(model, optimizer, x, labels), 'adamw')
        model.eval()
        with torch.no_grad():
            seconds['forward'] = timed(3 * args.runs, lambda: model(x), 'forward')
    result.update(seconds=seconds, cpu=CPU, maxRssMiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  threads=torch.get_num_threads(), torch=torch.__version__)
    print('@@result ' + json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
