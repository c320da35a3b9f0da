"""The comparison harness end to end on a tiny matrix: runs, resumes without recomputing, tables, ledger."""
from pathlib import Path
import numpy as np
import pytest

from scollapse.compare import (run_matrix, collect, paper_table, cost_ledger, ledger_totals, claims_scoreboard,
                               cell_config, plot_last_grids, METHODS, export_results, real_share, before_after)
from scollapse.loop import resolve_config, gen_dir

from conftest import TINY_SIZES as TINY, seed_cache
METH = ['SYN', 'ACU', 'ACUR-SIMS']


@pytest.fixture(scope='module')
def matrix(tmp_path_factory, cache_dir):
    root = tmp_path_factory.mktemp('compare')
    seed_cache(cache_dir, root / '_cache')   # the shared judge and encoder; the generation-0 models are its own
    st = run_matrix(METH, [0, 1], preset='smoke', root=root, overrides=TINY, progress=False, raise_errors=True)
    return root, st


def test_matrix_runs_every_cell_and_shares_gen0(matrix):
    root, st = matrix
    assert st.status.tolist() == ['ran'] * 6
    assert len(list((root / '_cache' / 'gen0').glob('*.pt'))) == 2            # one generation-0 model per seed
    df = collect(METH, [0, 1], preset='smoke', root=root, overrides=TINY)
    assert len(df) == 3 * 2 * 3 and df.complete.all()
    # same seed, same generation-0 model: SYN and ACU agree at generation 0, SIMS sampling differs
    g0 = df[df.generation == 0].set_index(['method', 'seed']).fid
    assert g0[('SYN', 0)] == g0[('ACU', 0)] and g0[('SYN', 0)] != g0[('ACUR-SIMS', 0)]


def test_finished_cells_are_never_recomputed(matrix):
    root, _ = matrix
    f = gen_dir(Path(cell_config('SYN', 0, 'digits', 'smoke', root, TINY).out_dir), 2) / 'samples.npz'
    before = f.stat().st_mtime_ns
    st = run_matrix(METH, [0, 1], preset='smoke', root=root, overrides=TINY, progress=False)
    assert (st.status == 'done before').all() and f.stat().st_mtime_ns == before


def test_ledger_counts_what_each_method_keeps(matrix):
    root, _ = matrix
    df = collect(METH, [0, 1], preset='smoke', root=root, overrides=TINY)
    led = cost_ledger(df, preset='smoke', root=root, overrides=TINY)
    assert led.loc[('ACU', 2), 'images_stored'] == 4 * 40 and led.loc[('SYN', 2), 'images_stored'] == 40
    assert led.loc[('ACU', 2), 'images_trained'] == 3 * 40 * 1         # real + 2 synthetic sets, 1 epoch
    assert led.loc[('ACUR-SIMS', 1), 'images_trained'] == 40 + 40      # + the auxiliary's fine-tune
    assert led.loc[('ACUR-SIMS', 1), 'extra_params'] > 0 and led.loc[('SYN', 1), 'extra_params'] == 0
    assert (led.disk_MB > 0).all()
    tot = ledger_totals(led, df)
    assert tot.loc['ACU', 'images_trained'] > tot.loc['SYN', 'images_trained']


def test_table_scoreboard_and_grids(matrix):
    root, _ = matrix
    df = collect(METH, [0, 1], preset='smoke', root=root, overrides=TINY)
    tab = paper_table(df)
    assert tab.shape == (3, 9) and sum(v.endswith('★') for v in tab[('fid', 'g2')]) == 1
    board = claims_scoreboard(df).set_index('claim')
    assert board.loc['SYN degrades: FID(G) − FID(0) > 0', 'n_seeds'] == 2
    assert board.loc['LSF beats ACUR on FID (mean g≥1): FID(ACUR) − FID(ACU-LSF) > 0', 'verdict'] == 'not run'
    fig = plot_last_grids(METH, root=root, preset='smoke', overrides=TINY)
    assert len([a for a in fig.axes if a.images]) == 3


def test_bad_matrix_input_fails_before_compute(tmp_path):
    with pytest.raises(ValueError, match='unknown'):
        run_matrix(['SYN', 'ACU-magic'], [0], preset='smoke', root=tmp_path, overrides=TINY, progress=False)
    with pytest.raises(ValueError, match='n_eval'):
        run_matrix(['SYN'], [0], preset='smoke', root=tmp_path, overrides={**TINY, 'n_eval': 1}, progress=False)
    assert not any(tmp_path.iterdir())


def test_results_export_real_share_and_before_after(matrix, tmp_path):
    root, _ = matrix
    written = export_results(METH, [0, 1], tmp_path / 'results', preset='smoke', root=root, overrides=TINY)
    assert len(written) == 6
    for d in written:   # the small artefacts only: no checkpoints, no samples
        assert {p.name for p in d.iterdir()} == {'config.json', 'metrics.csv', 'composition.csv', 'floor.json',
                                                 'grid.png', 'method.txt'}
    df = collect(METH, [0, 1], preset='smoke', root=root, overrides=TINY)
    share = real_share(df)
    assert (share[0] == 1).all() and share.loc['ACU', 1] == 0.5 and share.loc['ACU', 2] == pytest.approx(1 / 3, abs=1e-3)
    board = claims_scoreboard(df)
    before = board[['claim', 'verdict', 'effect', 'per_seed']].copy()
    before.loc[0, 'verdict'] = 'held' if board.verdict[0] != 'held' else 'did not hold'
    ba = before_after(board, before.drop(index=1))
    assert ba.change[0] == 'flipped' and ba.change[1] == 'new' and (ba.change[2:] == '').all()


# results/ in the repository: the committed smoke fixture (SYN, ACUR x seeds 0, 1, smoke preset, exported by
# export_results from run_matrix(['SYN', 'ACUR'], [0, 1], preset='smoke'))
FIXTURE = Path(__file__).parent / 'fixtures' / 'results_smoke'


def test_collect_results_reads_the_exported_cells():
    import pandas as pd
    from scollapse.compare import collect_results
    df = collect_results(FIXTURE)
    assert list(df.method.cat.categories) == ['SYN', 'ACUR'] and df.method.cat.ordered   # METHODS' order
    assert len(df) == 2 * 2 * 3 and df.complete.all() and sorted(df.seed.unique()) == [0, 1]
    met = pd.read_csv(FIXTURE / 'digits-replace-none-smoke-s0' / 'metrics.csv')
    assert list(df.columns) == ['method', 'seed', 'complete'] + list(met.columns)
    r = df[(df.method == 'SYN') & (df.seed == 0) & (df.generation == 2)].iloc[0]
    assert r.fid == pytest.approx(562.0838783327763) and r.recall == pytest.approx(0.06666667014360428)
    r = df[(df.method == 'ACUR') & (df.seed == 1) & (df.generation == 0)].iloc[0]
    assert r.real_fraction == 1.0 and r.n_train == 60
    one = collect_results(FIXTURE, methods=['ACUR', 'SYN'], seeds=[1])
    assert list(one.method.cat.categories) == ['ACUR', 'SYN'] and (one.seed == 1).all() and len(one) == 6
    assert one.method.iloc[0] == 'ACUR'
    assert not len(collect_results(FIXTURE, methods=['ACU']))


def test_collect_results_marks_incomplete_cells_and_refuses_duplicates(tmp_path):
    import json, shutil
    import pandas as pd
    from scollapse.compare import collect_results
    res = tmp_path / 'results'; shutil.copytree(FIXTURE, res)
    cell = res / 'digits-replace-none-smoke-s0'
    met = pd.read_csv(cell / 'metrics.csv'); met[met.generation < 2].to_csv(cell / 'metrics.csv', index=False)
    df = collect_results(res)
    assert not df[(df.method == 'SYN') & (df.seed == 0)].complete.any() and df[df.method == 'ACUR'].complete.all()
    shutil.copytree(res / 'digits-replace-none-smoke-s1', res / 'digits-replace-none-smoke-s1-copy')
    with pytest.raises(ValueError, match='two results folders hold SYN seed 1'):
        collect_results(res)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        collect_results(tmp_path / 'nowhere')


def test_collect_results_equals_collect_on_the_run_folders(matrix, tmp_path):
    import pandas as pd
    from scollapse.compare import collect_results
    root, _ = matrix
    export_results(METH, [0, 1], tmp_path / 'res', preset='smoke', root=root, overrides=TINY)
    live = collect(METH, [0, 1], preset='smoke', root=root, overrides=TINY)
    res = collect_results(tmp_path / 'res', METH, [0, 1])
    assert list(res.columns) == list(live.columns) and list(res.method.cat.categories) == METH
    num = [c for c in live.columns if c not in ('method',) and pd.api.types.is_numeric_dtype(live[c])]
    pd.testing.assert_frame_equal(res[['method'] + num], live[['method'] + num], check_dtype=False, rtol=1e-12)
    assert paper_table(res).equals(paper_table(live))


def test_plot_headline_one_line_per_method_and_save_figure(tmp_path):
    from scollapse.compare import collect_results, plot_headline, save_figure, plot_result_grids
    df = collect_results(FIXTURE)
    fig = plot_headline(df)
    assert len(fig.axes) == 2 and [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert [l.get_label() for l in fig.axes[0].lines] == ['SYN', 'ACUR'] and 'FID' in fig.axes[0].get_title()
    assert [len(ax.collections) for ax in fig.axes] == [2, 2]     # the ±1 sd bands
    fig = plot_headline(df, metrics=('fid', 'recall', 'precision'), floor=3.0)
    assert [len(ax.lines) for ax in fig.axes] == [3, 2, 2]        # + the real-data floor on FID
    p = save_figure(fig, tmp_path / 'out' / 'headline.png')
    assert p.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and [f.name for f in p.parent.iterdir()] == ['headline.png']
    grids = plot_result_grids(FIXTURE, ['ACUR', 'SYN'], seed=1)
    assert [a.get_title() for a in grids.axes if a.images] == ['ACUR, gen 2', 'SYN, gen 2']
