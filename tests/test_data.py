"""Data: shapes, class balance, disjoint splits, loaders for torchvision formats on data we make, clear errors."""
import gzip, pickle, struct
import numpy as np
import pytest

from scollapse.data import (load_dataset, real_splits, balanced_counts, get_spec, DatasetNotFoundError, dataset_specs,
                            celeba_class, fixed_pools)


def test_digits_shape_scale():
    x, y, spec = load_dataset('digits')
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.uint8 and y.dtype == np.int64
    assert x.max() == 255 and x.min() == 0 and spec.n_classes == 10


@pytest.mark.parametrize('n_train,n_ref', [(500, 500), (101, 37), (10, 2)])
def test_splits_balanced_disjoint_seeded(n_train, n_ref):
    x, y, spec = load_dataset('digits')
    s = real_splits(x, y, spec, n_train, n_ref, seed=3)
    assert np.array_equal(np.bincount(s.train_y, minlength=10), balanced_counts(n_train, 10))
    assert np.array_equal(np.bincount(s.ref_y, minlength=10), balanced_counts(n_ref, 10))
    assert np.array_equal(np.bincount(s.judge_y, minlength=10), [spec.judge_per_class] * 10)
    for k in ('train', 'ref', 'fresh', 'judge'):   # the arrays are the dataset's rows at the recorded indices
        assert np.array_equal(getattr(s, f'{k}_x'), x[s.index[k]]) and np.array_equal(getattr(s, f'{k}_y'), y[s.index[k]])
    s3 = real_splits(x, y, spec, n_train, n_ref, seed=3)
    assert np.array_equal(s.train_x, s3.train_x)
    s4 = real_splits(x, y, spec, n_train, n_ref, seed=4)
    assert not np.array_equal(s.train_x, s4.train_x)
    assert np.array_equal(s.index['judge'], s4.index['judge'])   # the judge does not depend on the run's seed


def fake_labels(spec):
    """Labels shaped like the real dataset's (class-balanced, official train then test), without its files."""
    n = {'fashion_mnist': 70000, 'mnist': 70000, 'cifar10': 60000, 'celeba': 40000, 'digits': 1797}[spec.name]
    return np.random.default_rng(0).permutation(np.arange(n) % spec.n_classes)


@pytest.mark.parametrize('name', sorted(dataset_specs()))
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_four_splits_pairwise_disjoint_for_every_dataset(name, seed):
    spec = dataset_specs()[name]
    y = load_dataset('digits')[1] if name == 'digits' else fake_labels(spec)
    x = np.zeros((len(y), 1, 1, 1), np.uint8)   # only the indices matter here
    n_train, n_ref = (500, 500) if name == 'digits' else (1000, 1000)
    s = real_splits(x, y, spec, n_train, n_ref, seed=seed)
    parts = {k: set(v.tolist()) for k, v in s.index.items()}
    for a in parts:
        for b in parts:
            assert a == b or not (parts[a] & parts[b]), (a, b)
    pools = fixed_pools(y, spec)
    assert parts['ref'] <= set(pools['ref'].tolist()) and parts['judge'] == set(pools['judge'].tolist())
    assert parts['train'] | parts['fresh'] == set(pools['train'].tolist())
    if spec.n_official_train:   # the reference comes from the official test split, the judge from the train split
        assert min(parts['ref']) >= spec.n_official_train and max(parts['judge']) < spec.n_official_train


def test_impossible_sizes():
    x, y, spec = load_dataset('digits')
    with pytest.raises(ValueError, match='too large'):
        real_splits(x, y, spec, 1700, 100)
    with pytest.raises(ValueError, match='n_train=850 is too large for digits.*judge'):
        real_splits(x, y, spec, 850, 100)   # 897 images outside the judge and ref pools, but class 8 has too few
    with pytest.raises(ValueError, match='n_ref=510 is too large'):
        real_splits(x, y, spec, 100, 510)   # the ref pool holds 50 per class
    with pytest.raises(ValueError, match='at least the number of classes'):
        real_splits(x, y, spec, 5, 100)


def _idx(path, arr):
    """Write an MNIST-style idx file (uint8)."""
    magic = 0x0800 | arr.ndim
    with open(path, 'wb') as f:
        f.write(struct.pack('>I', magic) + b''.join(struct.pack('>I', d) for d in arr.shape) + arr.tobytes())


@pytest.mark.parametrize('name,folder', [('mnist', 'MNIST'), ('fashion_mnist', 'FashionMNIST')])
def test_mnist_like_loaders_on_made_files(tmp_path, name, folder):
    raw = tmp_path / folder / 'raw'; raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (('train', 30), ('t10k', 20)):
        _idx(raw / f'{split}-images-idx3-ubyte', rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        _idx(raw / f'{split}-labels-idx1-ubyte', (np.arange(n) % 10).astype(np.uint8))
    x, y, spec = load_dataset(name, root=tmp_path)
    assert x.shape == (50, 1, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist() == [5] * 10


def test_cifar10_loader_on_made_files(tmp_path, monkeypatch):
    d = tmp_path / 'cifar-10-batches-py'; d.mkdir()
    rng = np.random.default_rng(0)
    import torchvision.datasets.cifar as tvc
    files = [f for f, _ in tvc.CIFAR10.train_list + tvc.CIFAR10.test_list]
    for f in files:
        with open(d / f, 'wb') as fh:
            pickle.dump({'data': rng.integers(0, 256, (4, 3072), dtype=np.uint8), 'labels': [0, 1, 2, 3]}, fh)
    with open(d / 'batches.meta', 'wb') as fh:
        pickle.dump({'label_names': [str(i) for i in range(10)]}, fh)
    # torchvision checks md5 sums of the real files; ours are made up, so skip that check only
    monkeypatch.setattr(tvc.CIFAR10, '_check_integrity', lambda self: True)
    monkeypatch.setattr(tvc, 'check_integrity', lambda *a, **k: True)
    x, y, spec = load_dataset('cifar10', root=tmp_path)
    assert x.shape == (4 * len(files), 3, 32, 32) and x.dtype == np.uint8
    with open(d / files[0], 'rb') as fh: first = pickle.load(fh)['data'][0]
    assert np.array_equal(x[0], first.reshape(3, 32, 32))   # CHW order preserved


def test_celeba_classes():
    names = ['Smiling', 'Young', 'Male']
    attr = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1], [1, 1, 1]])
    assert celeba_class(attr, names).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize('name,hint', [('mnist', 'MNIST/raw'), ('cifar10', 'cifar-10-batches-py'), ('celeba', 'celeba')])
def test_missing_data_says_where_and_how(tmp_path, name, hint):
    with pytest.raises(DatasetNotFoundError, match=hint):
        load_dataset(name, root=tmp_path)


def test_fashion_missing_everywhere(tmp_path, monkeypatch):
    import scollapse.data as D
    monkeypatch.setattr(D, 'FASHION_DEB_DIR', tmp_path / 'nowhere')
    with pytest.raises(DatasetNotFoundError, match='apt-get install dataset-fashion-mnist'):
        load_dataset('fashion_mnist', root=tmp_path)


def test_unknown_dataset():
    with pytest.raises(ValueError, match='choose one of'):
        get_spec('imagenet')
    assert set(dataset_specs()) == {'digits', 'fashion_mnist', 'mnist', 'cifar10', 'celeba'}
