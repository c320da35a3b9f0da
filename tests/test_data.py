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
    n_gen0 = None if name == 'digits' else 3000   # generation 0's images: a superset of the training set
    s = real_splits(x, y, spec, n_train, n_ref, seed=seed, n_gen0=n_gen0)
    parts = {k: set(v.tolist()) for k, v in s.index.items() if k != 'gen0'}
    for a in parts:
        for b in parts:
            assert a == b or not (parts[a] & parts[b]), (a, b)
    gen0 = set(s.index['gen0'].tolist())
    assert parts['train'] <= gen0 and not gen0 & (parts['fresh'] | parts['ref'] | parts['judge'])
    assert len(gen0) == (n_gen0 or n_train)
    pools = fixed_pools(y, spec)
    assert parts['ref'] <= set(pools['ref'].tolist()) and parts['judge'] == set(pools['judge'].tolist())
    assert gen0 | parts['fresh'] == set(pools['train'].tolist())
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


from pathlib import Path
import os, shutil, subprocess

FASHION = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def _fashion_gz(folder, n=(30, 20)):
    """Made-up Fashion-MNIST idx files, gzipped, as the Debian package and torchvision's mirror ship them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, k in zip(('train', 't10k'), n):
        for kind, arr in (('images-idx3', rng.integers(0, 256, (k, 28, 28), dtype=np.uint8)),
                          ('labels-idx1', (np.arange(k) % 10).astype(np.uint8))):
            _idx(folder / f'{split}-{kind}-ubyte', arr)
            with open(folder / f'{split}-{kind}-ubyte', 'rb') as f, gzip.open(folder / f'{split}-{kind}-ubyte.gz', 'wb') as g:
                g.write(f.read())
            (folder / f'{split}-{kind}-ubyte').unlink()


@pytest.mark.parametrize('via', ['data_root', 'SCOLLAPSE_DATA'])
def test_fashion_missing_names_make_data_apt_and_the_raw_folder(tmp_path, monkeypatch, via):
    """An empty data root and no Debian package: a FileNotFoundError that says exactly how to get the files."""
    import scollapse.data as D
    root = tmp_path / 'empty'; root.mkdir()
    monkeypatch.setattr(D, 'FASHION_DEB_DIR', tmp_path / 'no-system-package')   # hide /usr/share/datasets/fashion-mnist
    if via == 'SCOLLAPSE_DATA': monkeypatch.setenv('SCOLLAPSE_DATA', str(root))
    with pytest.raises(FileNotFoundError) as e:
        load_dataset('fashion_mnist', root=root if via == 'data_root' else None)
    msg = str(e.value)
    assert isinstance(e.value, DatasetNotFoundError)
    assert '`make data`' in msg and 'apt-get install' in msg and 'dataset-fashion-mnist' in msg
    assert f'{root / "FashionMNIST" / "raw"}/' in msg and all(f in msg for f in FASHION)   # the exact folder and files
    assert 'download=True' in msg and str(tmp_path / 'no-system-package') in msg
    assert not any(root.iterdir())   # nothing was written


@pytest.mark.parametrize('where', ['debian', 'raw_gz'])
def test_fashion_from_gz_files(tmp_path, monkeypatch, where):
    """The Debian package's .gz files, or torchvision's .gz files in <root>/FashionMNIST/raw, are decompressed in."""
    import scollapse.data as D
    deb, root = tmp_path / 'deb', tmp_path / 'root'
    _fashion_gz(deb if where == 'debian' else root / 'FashionMNIST' / 'raw')
    monkeypatch.setattr(D, 'FASHION_DEB_DIR', deb)
    x, y, spec = load_dataset('fashion_mnist', root=root)
    assert x.shape == (50, 1, 28, 28) and np.bincount(y).tolist() == [5] * 10
    assert all((root / 'FashionMNIST' / 'raw' / f).exists() for f in FASHION)


def test_run_loop_without_fashion_fails_before_compute(tmp_path, monkeypatch):
    import scollapse.data as D
    from scollapse.loop import LoopConfig, run_loop
    monkeypatch.setattr(D, 'FASHION_DEB_DIR', tmp_path / 'no-system-package')
    cfg = LoopConfig(dataset='fashion_mnist', preset='smoke', out_dir=str(tmp_path / 'run'),
                     cache_dir=str(tmp_path / 'cache'), data_root=str(tmp_path / 'nodata'))
    with pytest.raises(FileNotFoundError, match='make data'):
        run_loop(cfg)
    assert not (tmp_path / 'run').exists() and not (tmp_path / 'cache').exists()


@pytest.mark.skipif(not Path('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz').exists(),
                    reason='dataset-fashion-mnist is not installed (make data)')
def test_real_fashion_mnist_from_the_debian_package(tmp_path):
    x, y, spec = load_dataset('fashion_mnist', root=tmp_path)
    assert x.shape == (70000, 1, 28, 28) and x.dtype == np.uint8 and np.bincount(y).tolist() == [7000] * 10


REPO = Path(__file__).resolve().parents[1]


def _make_data(tmp_path, **env):
    make = shutil.which('make')
    if make is None: pytest.skip('make is not installed')
    nopath = tmp_path / 'bin'; nopath.mkdir(exist_ok=True)   # a PATH without apt-get (nor sudo)
    return subprocess.run([make, '-s', 'data', f'FASHION_DEB={tmp_path / "no-system-package"}',
                           f'DATA_ROOT={tmp_path / "root"}'], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, 'PATH': str(nopath), **env})


def test_make_data_without_apt_says_which_files_to_put_where(tmp_path):
    r = _make_data(tmp_path)
    assert r.returncode != 0
    assert 'apt-get is not available' in r.stdout and f'{tmp_path / "root" / "FashionMNIST" / "raw"}/' in r.stdout
    assert all(f in r.stdout for f in FASHION) and 'dataset-fashion-mnist' in r.stdout


def test_make_data_is_idempotent_when_the_files_are_there(tmp_path):
    _fashion_gz(tmp_path / 'root' / 'FashionMNIST' / 'raw')
    r = _make_data(tmp_path)
    assert r.returncode == 0 and 'already there' in r.stdout, r.stdout + r.stderr
