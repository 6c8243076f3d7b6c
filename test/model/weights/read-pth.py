"""Reads torch.save zip files the way torch.load does, for the tests, with or without torch.

  python3 read-pth.py FILE [FILE...]           one JSON line per file (see describe())
  python3 read-pth.py --torch CHECK REF        torch.load(CHECK, weights_only=False), then a strict
                                               load_state_dict into a module whose parameters and
                                               buffers have REF's key names and shapes (REF: a real
                                               mmaction2 checkpoint); prints the same JSON for CHECK

Without torch the archive is unpickled by Python's own pickle with a restricted Unpickler: torch's
rebuild function and storage classes map to stubs building numpy arrays from archive/data/<key>,
collections.OrderedDict to itself, mmengine's HistoryBuffer (and getattr on it) to inert stand-ins;
any other global is refused. Each tensor is reported with its dtype, shape and the SHA-256 of its
little-endian bytes, so the caller compares values exactly.
"""
import collections
import hashlib
import io
import json
import pickle
import sys
import zipfile

import numpy

STORAGES = {
    'FloatStorage': '<f4',
    'DoubleStorage': '<f8',
    'HalfStorage': '<f2',
    'LongStorage': '<i8',
    'IntStorage': '<i4',
    'ShortStorage': '<i2',
    'CharStorage': 'i1',
    'ByteStorage': 'u1',
    'BoolStorage': '?',
}


class StorageType:
    def __init__(self, name):
        self.dtype = STORAGES[name]


class Inert:
    """mmengine's HistoryBuffer and the like: kept as data."""

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def rebuild_tensor(storage, offset, size, stride, *rest):
    count = 1
    for dim in size:
        count *= dim
    item = storage.itemsize
    return numpy.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)).copy() if count else numpy.zeros(size, storage.dtype)


class Restricted(pickle.Unpickler):
    def __init__(self, data, archive, prefix):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if (module, name) == ('collections', 'OrderedDict'):
            return collections.OrderedDict
        if (module, name) == ('torch._utils', '_rebuild_tensor_v2'):
            return rebuild_tensor
        if module == 'torch' and name in STORAGES:
            return StorageType(name)
        if (module, name) == ('mmengine.logging.history_buffer', 'HistoryBuffer'):
            return Inert
        if (module, name) in (('__builtin__', 'getattr'), ('builtins', 'getattr')):
            return lambda owner, attribute: (owner.__name__, attribute)
        if module.startswith('numpy') or (module, name) == ('_codecs', 'encode'):
            return super().find_class(module, name)
        raise pickle.UnpicklingError('refusing global %s.%s' % (module, name))

    def persistent_load(self, pid):
        kind, storage_type, key, location, count = pid
        assert kind == 'storage' and location == 'cpu', pid
        raw = self.archive.read(self.prefix + 'data/' + key)
        array = numpy.frombuffer(raw, dtype=storage_type.dtype)
        assert array.size >= count, (key, array.size, count)
        return array[:count]


def read(path):
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None, 'CRC error'
        names = archive.namelist()
        pickles = [name for name in names if name.endswith('/data.pkl')]
        assert len(pickles) == 1, names
        prefix = pickles[0][: -len('data.pkl')]
        data = archive.read(pickles[0])
        misaligned = []
        with open(path, 'rb') as handle:
            raw = handle.read()
        for info in archive.infolist():
            if info.filename.startswith(prefix + 'data/'):
                # Local header: 30 bytes + name + extra; torch starts each record's data on 64 bytes.
                name_length = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], 'little')
                extra_length = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], 'little')
                start = info.header_offset + 30 + name_length + extra_length
                if start % 64:
                    misaligned.append(info.filename)
        layout = {
            'entries': names,
            'protocol': data[1] if data[:1] == b'\x80' else None,
            'version': archive.read(prefix + 'version').decode().strip() if prefix + 'version' in names else None,
            'stored': all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist()),
            'misaligned': misaligned,
        }
        return Restricted(data, archive, prefix).load(), layout


def describe(root, layout):
    state_dict = root['state_dict'] if isinstance(root, dict) and 'state_dict' in root else root
    tensors = []
    for key, value in state_dict.items():
        array = numpy.asarray(value)
        little = array.astype(array.dtype.newbyteorder('<')) if array.dtype.byteorder == '>' else array
        tensors.append([key, array.dtype.name, list(array.shape), hashlib.sha256(numpy.ascontiguousarray(little).tobytes()).hexdigest()])
    meta = root.get('meta') if isinstance(root, dict) else None
    return {'layout': layout, 'top': list(root.keys()) if isinstance(root, dict) else None, 'meta': meta if isinstance(meta, dict) else None, 'tensors': tensors, 'ordered': type(state_dict).__name__}


def torch_check(path, reference):
    import torch

    checkpoint = torch.load(path, map_location='cpu', weights_only=False) if 'weights_only' in torch.load.__code__.co_varnames else torch.load(path, map_location='cpu')
    ref_root, _ = read(reference)
    module = torch.nn.Module()
    for key, value in ref_root['state_dict'].items():
        parts = key.split('.')
        owner = module
        for part in parts[:-1]:
            if part not in owner._modules:
                owner.add_module(part, torch.nn.Module())
            owner = owner._modules[part]
        tensor = torch.zeros(tuple(value.shape), dtype=torch.from_numpy(numpy.zeros(1, value.dtype)).dtype)
        if key.endswith('relative_position_index'):
            owner.register_buffer(parts[-1], tensor)
        else:
            owner.register_parameter(parts[-1], torch.nn.Parameter(tensor))
    result = module.load_state_dict(checkpoint['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    for key, value in module.state_dict().items():
        assert torch.equal(value, checkpoint['state_dict'][key]), key
    root = {'meta': checkpoint['meta'], 'state_dict': collections.OrderedDict((key, value.numpy()) for key, value in checkpoint['state_dict'].items())}
    return describe(root, {'torch': torch.__version__, 'strict': True})


def main(argv):
    if argv[:1] == ['--torch']:
        print(json.dumps(torch_check(argv[1], argv[2])))
        return
    for path in argv:
        root, layout = read(path)
        print(json.dumps(describe(root, layout), default=str))


if __name__ == '__main__':
    main(sys.argv[1:])
