"""The referee is not a player: the judge trains on the judge split only, and no selection or memorisation path
can reach it."""
import shutil
import sys
from dataclasses import fields

import numpy as np
import pytest

import scollapse.classifier
import scollapse.loop
from scollapse.data import load_dataset, fixed_pools
from scollapse.filters import FilterContext, check_filter_options
from scollapse.loop import (LoopConfig, run_loop, prepare, training_set, memorization_metrics, load_samples,
                            classifier_path, judge_epochs)

from conftest import TINY


def test_filter_context_has_no_handle_to_the_judge():
    names = {f.name for f in fields(FilterContext)}
    assert 'encoder' in names and not names & {'classifier', 'judge'}
    with pytest.raises(ValueError, match="judge's classifier features are not a selection space"):
        check_filter_options('greedy', {'features': 'classifier'})


def test_judge_trains_on_the_judge_split_only(cache_dir, tmp_path):
    run_loop(LoopConfig(**TINY, out_dir=str(tmp_path / 'run'), cache_dir=str(cache_dir)))
    judge = scollapse.classifier.load_classifier(classifier_path(LoopConfig(cache_dir=str(cache_dir))))
    x, y, spec = load_dataset('digits')
    judge_idx = fixed_pools(y, spec)['judge']
    # the cached judge's fingerprint is that of the judge split's images and labels, for every run and seed
    assert judge.info['fingerprint'] == scollapse.classifier.images_fingerprint(x[judge_idx], y[judge_idx])
    assert judge_epochs(len(judge_idx)) == 50


@pytest.mark.parametrize('filt,options', [('greedy', {'features': 'encoder'}), ('threshold_decay', {}),
                                          ('lsf_entropy', {'features': 'encoder'})])
def test_selection_and_memorisation_never_load_the_judge(cache_dir, tmp_path, monkeypatch, filt, options):
    cfg = LoopConfig(**TINY, filter=filt, filter_options=options, out_dir=str(tmp_path / 'run'), cache_dir=str(cache_dir))
    run_loop(cfg)
    cfg, data, out, _ = prepare(cfg)   # the judge is loaded here, for the metrics
    shutil.rmtree(out / 'filter_cache')   # nothing cached: every selection recomputes its features

    def forbidden(*args, **kwargs):
        raise AssertionError('a selection or memorisation path used the judge')
    # the judge's class itself, not a module's name for a function: building, loading (which builds) or running a
    # judge fails however the caller imported it (`from scollapse.classifier import load_classifier` included)
    for method in ('__init__', 'features', 'forward'):
        monkeypatch.setattr(scollapse.classifier.SmallClassifier, method, forbidden)
    for g in (1, 2):
        train, _ = training_set(cfg, data, out, g)
        xs, _ = load_samples(out, g)
        m = memorization_metrics(xs, train.images, data.encoder)
        assert set(m) >= {'entropy_train_pixel', 'gs_pixel', 'entropy_train_encoder', 'gs_encoder', 'memorization_encoder'}
        assert np.isfinite([m['gs_pixel'], m['gs_encoder']]).all()


def test_encoder_without_enough_train_pool_images_is_refused_before_compute(tmp_path, monkeypatch):
    sizes = sys.modules[scollapse.loop.check_sizes.__module__]   # the module whose check reads the constant
    monkeypatch.setattr(sizes, 'MIN_ENCODER_IMAGES', 10_000)   # digits' train pool has 897 images
    with pytest.raises(ValueError, match="features='encoder' needs a selection encoder trained on >= 10000"):
        run_loop(LoopConfig(**TINY, filter='greedy', out_dir=str(tmp_path / 'run'), cache_dir=str(tmp_path / 'cache')))
    assert not (tmp_path / 'cache').exists()
    run_loop_cfg = LoopConfig(**TINY, filter='greedy', filter_options={'features': 'pixel'},
                              out_dir=str(tmp_path / 'run'), cache_dir=str(tmp_path / 'cache'))
    scollapse.loop.check_sizes(scollapse.loop.resolve_config(run_loop_cfg), load_dataset('digits')[1])   # pixels: fine


def test_a_judge_split_too_small_for_the_classes_is_refused():
    from dataclasses import replace
    from scollapse.data import real_splits
    x, y, spec = load_dataset('digits')
    with pytest.raises(ValueError, match='judge split of digits is too small for its 10 classes'):
        real_splits(x, y, replace(spec, judge_per_class=5), 100, 100)
    with pytest.raises(ValueError, match='class 8 has 124 images, the judge needs 200'):
        real_splits(x, y, replace(spec, judge_per_class=200), 100, 100)
