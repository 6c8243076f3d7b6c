"""Stand-in for mmaction2's tools/train.py, owned by the cluster tests.

It reads the bundle's config.py (the overrides; the official _base_ is not needed), trains nothing,
and writes what mmaction2 writes, in the chosen generation's layout: JSON log lines (rank 0 only),
epoch checkpoints as torch.save zip archives holding a state dict of the configured keys, latest /
best / last_checkpoint markers, and honours auto-resume. Switches (environment):
  VSWIN_STANDIN_SLEEP       seconds per iteration (default 0.2)
  VSWIN_STANDIN_FAIL_EPOCH  exit with VSWIN_STANDIN_EXIT_CODE (default 3) when this epoch starts
  VSWIN_STANDIN_NAN_ITER    global iteration (1-based) whose loss is NaN
  VSWIN_STANDIN_KEYS        JSON file of [key, shape] pairs for the state dict (default: keys.json here)
  VSWIN_STANDIN_SILENT      "1": never write a log (a job that never logs)
Torch is not needed: the archive is written with a pickler that names torch's globals.

What it checks as the real engine does (mmaction2 1.2.0 / mmengine 0.10.7 seen failing on each):
  - model.backbone.pretrained2d with pretrained None: mmaction2 inflates None (TypeError);
  - the VswinStrictLoad hook of the bundle: load_from must hold exactly the model's keys (1.x names
    backbone.norm3), else the job fails as the hook makes the real one fail;
  - the decoder transform of the pipelines must be importable.
What it writes as the real 1.x engine does: `base_lr` beside `lr` in the log, checkpoints whose
`message_hub` holds mmengine HistoryBuffer objects (pickled with getattr for their statistics
methods, protocol 2) and whose state dict names the last norm backbone.norm3.
"""
import argparse
import collections
import io
import json
import math
import os
import pickle
import struct
import sys
import time
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

try:
    import numpy
except ImportError:  # the real message hub holds numpy arrays; lists keep the stand-in running without
    numpy = None


# mmengine.logging.history_buffer.HistoryBuffer as pickled by the real engine (no mmengine needed).
def _module(name):
    module = sys.modules.get(name) or types.ModuleType(name)
    sys.modules[name] = module
    return module


class HistoryBuffer:
    def __init__(self, values):
        self.max_length = 1000000
        array = (lambda items, kind: numpy.array(items, dtype=kind)) if numpy is not None else (lambda items, kind: list(items))
        self._log_history = array(values, 'float64')
        self._count_history = array([1] * len(values), 'int64')
        # Functions of the class: protocol 2 pickles them as getattr(HistoryBuffer, name).
        self.statistics_methods = {'min': HistoryBuffer.min, 'max': HistoryBuffer.max, 'current': HistoryBuffer.current, 'mean': HistoryBuffer.mean}

    def min(self):
        return min(self._log_history)

    def max(self):
        return max(self._log_history)

    def current(self):
        return self._log_history[-1]

    def mean(self):
        return sum(self._log_history) / len(self._log_history)


HistoryBuffer.__module__ = 'mmengine.logging.history_buffer'
_module('mmengine').logging = _module('mmengine.logging')
_module('mmengine.logging').history_buffer = _module('mmengine.logging.history_buffer')
_module('mmengine.logging.history_buffer').HistoryBuffer = HistoryBuffer


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--launcher', default='none')
    parser.add_argument('--work-dir', default='work')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--validate', action='store_true')
    parser.add_argument('--resume-from', default=None)
    parser.add_argument('--resume', action='store_true')
    return parser.parse_args()


def load_config(path):
    namespace = {}
    with open(path) as handle:
        exec(handle.read(), namespace)
    return namespace


# Torch globals for the pickle, without torch: the pickler writes module + name only.
torch_module = types.ModuleType('torch')
utils_module = types.ModuleType('torch._utils')


class FloatStorage:
    pass


class LongStorage:
    pass


def _rebuild_tensor_v2(*args):
    raise RuntimeError('never called')


for cls in (FloatStorage, LongStorage):
    cls.__module__ = 'torch'
    setattr(torch_module, cls.__name__, cls)
_rebuild_tensor_v2.__module__ = 'torch._utils'
utils_module._rebuild_tensor_v2 = _rebuild_tensor_v2
torch_module._utils = utils_module
sys.modules.setdefault('torch', torch_module)
sys.modules.setdefault('torch._utils', utils_module)


class Storage:
    def __init__(self, key, kind, data):
        self.key, self.kind, self.data = key, kind, data


class Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, shape

    def __reduce_ex__(self, protocol):
        stride, step = [], 1
        for size in reversed(self.shape):
            stride.insert(0, step)
            step *= size
        return (_rebuild_tensor_v2, (self.storage, 0, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            count = len(obj.data) // (4 if obj.kind is FloatStorage else 8)
            return ('storage', obj.kind, obj.key, 'cpu', count)
        return None


def save_checkpoint(path, state, meta, message_hub=None):
    storages = []
    state_dict = collections.OrderedDict()
    for index, (key, shape) in enumerate(state):
        count = 1
        for size in shape:
            count *= size
        if key.endswith('relative_position_index'):
            storage = Storage(str(index), LongStorage, struct.pack('<%dq' % count, *([0] * count)))
        else:
            values = [math.sin(0.37 * (index + 1) + 0.011 * i) * 0.02 for i in range(count)]
            storage = Storage(str(index), FloatStorage, struct.pack('<%df' % count, *values))
        storages.append(storage)
        state_dict[key] = Tensor(storage, shape)
    buffer = io.BytesIO()
    root = {'meta': meta, 'state_dict': state_dict}
    if message_hub is not None:
        root['message_hub'] = message_hub
    root['optimizer'] = {'state': {}, 'param_groups': [{'lr': meta.get('lr', 0.0)}]}
    TorchPickler(buffer, protocol=2).dump(root)
    temporary = path + '.tmp'
    with zipfile.ZipFile(temporary, 'w', zipfile.ZIP_STORED) as archive:
        archive.writestr('archive/data.pkl', buffer.getvalue())
        archive.writestr('archive/byteorder', 'little')
        for storage in storages:
            archive.writestr('archive/data/' + storage.key, storage.data)
        archive.writestr('archive/version', '3\n')
    os.replace(temporary, path)


class MetaReader(pickle.Unpickler):
    def find_class(self, module, name):
        if name == 'OrderedDict':
            return collections.OrderedDict
        return lambda *args, **kwargs: None

    def persistent_load(self, pid):
        return None


def read_checkpoint(path):
    with zipfile.ZipFile(path) as archive:
        name = [entry for entry in archive.namelist() if entry.endswith('data.pkl')][0]
        return MetaReader(io.BytesIO(archive.read(name))).load()


def read_meta(path):
    return read_checkpoint(path)['meta']


def check_model(cfg, flavor, state):
    """Fails where the real engine fails: pretrained2d without pretrained, a non-strict load_from."""
    backbone = cfg.get('model', {}).get('backbone', {})
    if backbone.get('pretrained2d') and backbone.get('pretrained') is None:
        print("stand-in: TypeError in inflate_weights: expected str, bytes or os.PathLike object, not NoneType (pretrained2d=True with pretrained=None)", file=sys.stderr, flush=True)
        sys.exit(1)
    for hook in cfg.get('custom_hooks', []) or []:
        if hook.get('type') != 'VswinStrictLoad':
            continue
        imports = (cfg.get('custom_imports') or {}).get('imports', [])
        if 'vswin_hooks' not in imports or not os.path.exists('vswin_hooks.py'):
            print('stand-in: VswinStrictLoad is not registered (custom_imports vswin_hooks, vswin_hooks.py)', file=sys.stderr, flush=True)
            sys.exit(1)
        loaded = read_checkpoint(hook['checkpoint'])
        keys = set((loaded.get('state_dict') or loaded).keys())
        own = set(key for key, _ in state)
        missing = sorted(own - keys - set(hook.get('allow_missing', [])))
        unexpected = sorted(keys - own)
        if missing or unexpected:
            print('stand-in: %s does not fit the model strictly: missing %s, unexpected %s' % (hook['checkpoint'], missing[:5], unexpected[:5]), file=sys.stderr, flush=True)
            sys.exit(1)
        print('stand-in: VswinStrictLoad loaded all %d tensors of %s' % (len(keys), hook['checkpoint']), flush=True)
    for pipeline in pipelines_of(cfg, flavor):
        for step in pipeline:
            module = {'DecordInit': 'decord', 'PyAVInit': 'av', 'OpenCVInit': 'cv2'}.get(step.get('type'))
            if module:
                try:
                    __import__(module)
                except ImportError:
                    print('stand-in: %s needs %s: No module named %r' % (step['type'], module, module), file=sys.stderr, flush=True)
                    sys.exit(1)


def pipelines_of(cfg, flavor):
    if flavor == '0.x':
        data = cfg.get('data', {})
        return [split.get('pipeline', []) for split in (data.get('train'), data.get('val'), data.get('test')) if split]
    loaders = [cfg.get(name) for name in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    return [loader['dataset'].get('pipeline', []) for loader in loaders if loader]


def dump_line(handle, entry):
    # Python's json writes NaN as a bare token, as mmcv's logger does.
    handle.write(json.dumps(entry) + '\n')
    handle.flush()


def main():
    args = parse_args()
    cfg = load_config(args.config)
    flavor = '1.x' if 'train_cfg' in cfg else '0.x'
    rank = int(os.environ.get('SLURM_PROCID', os.environ.get('RANK', '0')))
    world = int(os.environ.get('SLURM_NTASKS', os.environ.get('WORLD_SIZE', '1')))
    if flavor == '0.x':
        epochs = cfg['total_epochs']
        ann = cfg['data']['train']['ann_file']
        batch = cfg['data']['videos_per_gpu'] // cfg.get('optimizer_config', {}).get('update_interval', 1)
        log_interval = cfg.get('log_config', {}).get('interval', 20)
        val_interval = cfg.get('evaluation', {}).get('interval', 5) if args.validate else None
        lr = cfg['optimizer']['lr'] * 0.1
    else:
        epochs = cfg['train_cfg']['max_epochs']
        ann = cfg['train_dataloader']['dataset']['ann_file']
        batch = cfg['train_dataloader']['batch_size']
        log_interval = (cfg.get('default_hooks', {}).get('logger') or {}).get('interval', 100)
        val_interval = cfg['train_cfg'].get('val_interval') if cfg.get('val_dataloader') else None
        lr = cfg['optim_wrapper']['optimizer']['lr'] * 0.1
        base_lr = cfg['optim_wrapper']['optimizer']['lr']
    with open(ann) as handle:
        videos = len([line for line in handle if line.strip()])
    iters = math.ceil(math.ceil(videos / world) / batch)
    keys_file = os.environ.get('VSWIN_STANDIN_KEYS', os.path.join(HERE, 'keys.json'))
    with open(keys_file) as handle:
        state = [(key, shape) for key, shape in json.load(handle)]
    if flavor == '1.x':
        state = [(key.replace('backbone.norm.', 'backbone.norm3.'), shape) for key, shape in state]
    sys.path.insert(0, os.path.join(HERE, '..'))  # the engine folder (stand-in decoder packages)
    check_model(cfg, flavor, state)
    sleep = float(os.environ.get('VSWIN_STANDIN_SLEEP', '0.2'))
    fail_epoch = int(os.environ.get('VSWIN_STANDIN_FAIL_EPOCH', '0'))
    exit_code = int(os.environ.get('VSWIN_STANDIN_EXIT_CODE', '3'))
    nan_iter = int(os.environ.get('VSWIN_STANDIN_NAN_ITER', '0'))
    silent = os.environ.get('VSWIN_STANDIN_SILENT') == '1'
    work = args.work_dir
    os.makedirs(work, exist_ok=True)

    start_epoch = 1
    if args.resume_from:
        start_epoch = read_meta(args.resume_from)['epoch'] + 1
    elif args.resume and os.path.exists(os.path.join(work, 'last_checkpoint')):
        with open(os.path.join(work, 'last_checkpoint')) as handle:
            start_epoch = read_meta(handle.read().strip())['epoch'] + 1

    stamp = time.strftime('%Y%m%d_%H%M%S')
    log = None
    if rank == 0 and not silent:
        if flavor == '0.x':
            log = open(os.path.join(work, stamp + '.log.json'), 'a')
            dump_line(log, {'env_info': 'stand-in', 'seed': args.seed, 'exp_name': os.path.basename(args.config)})
        else:
            os.makedirs(os.path.join(work, stamp, 'vis_data'), exist_ok=True)
            log = open(os.path.join(work, stamp, 'vis_data', 'scalars.json'), 'a')
    print('stand-in %s rank %d/%d: %d videos, %d iterations per epoch, epochs %d..%d' % (flavor, rank, world, videos, iters, start_epoch, epochs), flush=True)

    best = None
    history = {}
    for epoch in range(start_epoch, epochs + 1):
        if fail_epoch and epoch == fail_epoch:
            print('stand-in: failing at epoch %d as asked' % epoch, file=sys.stderr, flush=True)
            sys.exit(exit_code)
        for inner in range(1, iters + 1):
            time.sleep(sleep)
            step = (epoch - 1) * iters + inner
            loss = float('nan') if step == nan_iter else 1.4 * math.exp(-0.05 * step)
            if log is None or inner % log_interval:
                continue
            common = {'lr': lr, 'data_time': 0.01, 'grad_norm': 1.0, 'loss': loss, 'top1_acc': 0.25, 'top5_acc': 1.0, 'loss_cls': loss, 'time': sleep, 'epoch': epoch, 'memory': 100}
            if flavor == '0.x':
                dump_line(log, dict(mode='train', iter=inner, **{k: v for k, v in common.items() if k != 'epoch'}, epoch=epoch))
            else:
                dump_line(log, dict(base_lr=base_lr, iter=step, step=step, **common))
                history.setdefault('train/loss', []).append(loss)
                history.setdefault('train/base_lr', []).append(base_lr)
        accuracy = None
        if val_interval and (epoch % val_interval == 0 or epoch == epochs):
            accuracy = min(1.0, 0.2 * epoch)
            if log is not None:
                if flavor == '0.x':
                    dump_line(log, {'mode': 'val', 'epoch': epoch, 'iter': iters, 'lr': lr, 'top1_acc': accuracy, 'top5_acc': 1.0, 'mean_class_accuracy': accuracy})
                else:
                    dump_line(log, {'acc/top1': accuracy, 'acc/top5': 1.0, 'acc/mean1': accuracy, 'data_time': 0.01, 'time': 0.02, 'step': epoch})
        if rank != 0:
            continue
        path = os.path.join(work, 'epoch_%d.pth' % epoch)
        hub = None
        if flavor == '1.x':
            hub = {'log_scalars': {name: HistoryBuffer(values) for name, values in history.items()}, 'runtime_info': {'epoch': epoch, 'iter': epoch * iters}, 'resumed_keys': {}}
        meta = {'epoch': epoch, 'iter': epoch * iters, 'lr': lr}
        if flavor == '1.x':
            meta['mmengine_version'] = '0.0.0-standin'
        save_checkpoint(path, state, meta, hub)
        if flavor == '0.x':
            latest = os.path.join(work, 'latest.pth')
            if os.path.lexists(latest):
                os.remove(latest)
            os.symlink('epoch_%d.pth' % epoch, latest)
        else:
            with open(os.path.join(work, 'last_checkpoint'), 'w') as handle:
                handle.write(os.path.abspath(path))
        if accuracy is not None and (best is None or accuracy > best):
            best = accuracy
            prefix = 'best_top1_acc_epoch_' if flavor == '0.x' else 'best_acc_top1_epoch_'
            for name in os.listdir(work):
                if name.startswith(prefix):
                    os.remove(os.path.join(work, name))
            save_checkpoint(os.path.join(work, '%s%d.pth' % (prefix, epoch)), state, {'epoch': epoch, 'iter': epoch * iters}, hub)
    print('stand-in: done', flush=True)


if __name__ == '__main__':
    main()
