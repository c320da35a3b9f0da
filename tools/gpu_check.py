"""The Python steps of tools/gpu_check.sh: environment, benchmark table with utilisation, matrix cells, export."""
from __future__ import annotations
import sys
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

BENCH_NETS = (('paper 28x28', (1, 28, 28), 'paper'), ('paper 32x32', (3, 32, 32), 'paper'),
              ('gpu 28x28', (1, 28, 28), 'gpu'), ('CPU_28', (1, 28, 28), 'cpu'))
GPU_VARIANTS = ('default', 'bf16 autocast')      # every net; 'bf16 + compile' for the gpu preset only (~70 s)
DRY_BATCH = 1                                     # dry run: the real nets at batch 1, one timed step each
MATRIX = dict(real=dict(dataset='fashion_mnist', preset='gpu', seeds=(0, 1, 2), device='cuda'),
              dry=dict(dataset='digits', preset='smoke', seeds=(0,), device='cpu', methods=('ACUR',)))


def env() -> None:
    """Print the device and the versions."""
    import torch, diffusers, scollapse
    print(f'python {sys.version.split()[0]}, torch {torch.__version__}, diffusers {diffusers.__version__}, '
          f'scollapse {scollapse.__version__}')
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print(f'device: {p.name}, {p.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda}, '
              f'{torch.cuda.device_count()} device(s)')
    else:
        print(f'device: CPU only ({torch.get_num_threads()} threads)')


def bench(out_csv: str, dry: bool) -> None:
    """The benchmark table with utilisation of the four nets, written to out_csv and printed."""
    import pandas as pd
    import torch
    from scollapse.bench import speed_table, SPEED_VARIANTS
    from scollapse.ddpm import model_preset
    from scollapse.speed import matmul_peak
    device = 'cpu' if dry else 'cuda'
    steps = dict(train_steps=1, sample_steps=1) if dry else dict(train_steps=20, sample_steps=10)
    if not dry:
        print(f"measured matmul peak: bf16 {matmul_peak(device, 'bf16', 8192):.0f}, "
              f"tf32 {matmul_peak(device, 'tf32', 8192):.0f} TFLOP/s")
    tables = {}
    for label, shape, preset in BENCH_NETS:
        cfg = model_preset(shape, preset)
        if dry: cfg = replace(cfg, batch_size=DRY_BATCH, sample_batch_size=DRY_BATCH)
        names = ['default'] if dry else [*GPU_VARIANTS, *(['bf16 + compile'] if preset == 'gpu' else [])]
        tables[label] = speed_table(cfg, 10, {v: SPEED_VARIANTS[v] for v in names}, device=device, **steps)
        df = pd.concat(tables, names=['net', 'variant'])
        df.to_csv(out_csv)   # after each net: a timeout keeps the nets measured so far
        if torch.cuda.is_available(): torch.cuda.empty_cache()
    with pd.option_context('display.width', 250, 'display.max_columns', 30):
        print(df.drop(columns=['peak_source']))
    print('peaks:', '; '.join(sorted(set(df.peak_source))))


def matrix(work: str, results: str, dry: bool) -> None:
    """Run (or resume) the matrix cells that fit the step's timeout; cells exported to `results` are not re-run."""
    from scollapse.compare import run_matrix
    from scollapse.bench import FASHION_MATRIX
    m = MATRIX['dry' if dry else 'real']
    status = run_matrix(list(m.get('methods', FASHION_MATRIX)), list(m['seeds']), m['dataset'], m['preset'],
                        root=f'{work}/runs', overrides={'device': m['device']}, results=results)
    print(status.to_string())


def export(work: str, results: str, tarball: str, dry: bool) -> None:
    """Tar the finished cells' small artefacts in the results/ layout (results/<dataset>/<preset>/<run_name>/)."""
    from scollapse.compare import export_results
    from scollapse.bench import FASHION_MATRIX
    m = MATRIX['dry' if dry else 'real']
    rel = Path('results') / m['dataset'] / m['preset']
    with tempfile.TemporaryDirectory() as tmp:
        written = export_results(list(m.get('methods', FASHION_MATRIX)), list(m['seeds']), Path(tmp) / rel,
                                 m['dataset'], m['preset'], root=f'{work}/runs', overrides={'device': m['device']})
        with tarfile.open(tarball, 'w:gz') as tar:
            for d in written: tar.add(d, arcname=str(rel / d.name))
    print(f'{len(written)} finished cell(s) in {tarball} (extract at the repository root; cells already in '
          f'{results} were not re-run)')


if __name__ == '__main__':
    step, *args = sys.argv[1:]
    dry = args[-1] == 'dry' if args else False
    {'env': lambda: env(), 'bench': lambda: bench(args[0], dry), 'matrix': lambda: matrix(args[0], args[1], dry),
     'export': lambda: export(args[0], args[1], args[2], dry)}[step]()
