"""Benchmark: vectorised Greedy / TDF selection vs the per-candidate loop references (scollapse.entropy).

Selects 1,000 of 10,000 standard-Gaussian points in d=384 (float32 data, seed 0). TDF uses tau0 = tdf_tau0(X)
(1.5 x the median 1-NN distance) and decay 0.95. Reports the best-of-3 wall time of the vectorised
functions, the loop-reference time, their ratio, whether the selections are identical, and the peak extra memory.
Each measurement runs in a fresh subprocess; peak extra memory is the highest resident set size seen while the
function ran (polled every 0.5 ms) minus the RSS after the data was built and a warm-up call. A loop reference whose pilot run predicts more than 60 s is timed on fewer picks and
extrapolated linearly in the number of picks (exact for greedy: each pick scans all |S| candidates); the output says so.

Not collected by pytest (bench_*.py). Run: .venv/bin/python tests/bench_entropy.py [--n-total 10000 --n-select 1000 --d 384]
"""
import argparse, json, os, resource, subprocess, sys, time


def build(n_total: int, d: int):
    import torch
    return torch.randn(n_total, d, generator=torch.Generator().manual_seed(0))


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20


def child(args) -> None:
    """Run one measurement and print a JSON line: times, peak extra RSS (polled every 0.5 ms), selection."""
    import threading
    import numpy as np
    from scollapse import entropy as E
    X = build(args.n_total, args.d)
    fn = getattr(E, args.fn)
    kw = json.loads(args.kw)
    if 'dtype' in kw: kw['dtype'] = getattr(__import__('torch'), kw['dtype'])
    fn(X[:300], 5, **kw)                                                 # warm-up (imports, allocator)
    base, peak, stop = rss_mb(), [0.0], threading.Event()

    def poll():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb()); time.sleep(0.0005)
    th = threading.Thread(target=poll, daemon=True); th.start()
    times, sel = [], None
    for _ in range(args.repeats):
        t = time.perf_counter(); sel = fn(X, args.n_select, **kw); times.append(time.perf_counter() - t)
    stop.set(); th.join()
    print(json.dumps({'times': times, 'extra_mb': max(peak[0], rss_mb()) - base, 'sel': np.asarray(sel).tolist()}))


def run(fn: str, n_total: int, n_select: int, d: int, repeats: int, **kw) -> dict:
    cmd = [sys.executable, __file__, '--child', '--fn', fn, '--n-total', str(n_total), '--n-select', str(n_select),
           '--d', str(d), '--repeats', str(repeats), '--kw', json.dumps(kw)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--child', action='store_true'); p.add_argument('--fn'); p.add_argument('--kw', default='{}')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--n-total', type=int, default=10_000); p.add_argument('--n-select', type=int, default=1_000)
    p.add_argument('--d', type=int, default=384); p.add_argument('--loop-budget', type=float, default=60.0)
    args = p.parse_args()
    if args.child: return child(args)

    import torch
    from scollapse.entropy import tdf_tau0, kl_entropy
    N, n, d = args.n_total, args.n_select, args.d
    X = build(N, d)
    tau0 = tdf_tau0(X)
    t = time.perf_counter(); h = kl_entropy(X); t_kl = time.perf_counter() - t
    print(f'# scollapse.entropy benchmark: select {n:,} of {N:,} points, d={d}, float32 Gaussian data (seed 0)')
    print(f'# machine: {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} torch threads (selectors: num_threads=1 by default), '
          f'load average at start {os.getloadavg()[0]:.2f}')
    print(f'# TDF tau0 = 1.5 x median 1-NN distance = {tau0:.3f}, decay 0.95')
    print(f'# kl_entropy (float64, blockwise) on all {N:,} points: {t_kl:.2f} s, H = {h:.1f} nats\n')

    cases = [('greedy (method=auto -> lazy bounds)', 'greedy_selection', 'greedy_selection_loop', {}),
             ('greedy (method=auto -> lazy bounds, dtype=float64)', 'greedy_selection', 'greedy_selection_loop',
              dict(dtype='float64')),
             ('greedy (method=eager: released-code running-min update)', 'greedy_selection', 'greedy_selection_loop',
              dict(method='eager')),
             ('TDF (Algorithm 2: decay after an empty pass)', 'threshold_decay_filter', 'threshold_decay_filter_loop',
              dict(tau=tau0, decay=0.95)),
             ('TDF (released code: decay after every pass)', 'threshold_decay_filter', 'threshold_decay_filter_loop',
              dict(tau=tau0, decay=0.95, decay_every_pass=True))]
    loops = {}
    for name, fv, fl, kw in cases:
        v = run(fv, N, n, d, args.repeats, **kw)
        best = min(v['times'])
        kwl = {k: x for k, x in kw.items() if k not in ('method', 'dtype')}
        key = (fl, json.dumps(kwl))
        if key not in loops:
            note = ''
            if fl == 'greedy_selection_loop':                                # pilot, then full or extrapolated
                pilot_n = max(2, n // 50)
                pl = run(fl, N, pilot_n, d, 1, **kwl)
                est = pl['times'][0] * (n - 1) / (pilot_n - 1)
                if est > args.loop_budget:
                    m = max(pilot_n, int(min(n, (pilot_n - 1) * args.loop_budget / 2 / pl['times'][0])))
                    lp = run(fl, N, m, d, 1, **kwl)
                    t_loop, m_cmp = lp['times'][0] * (n - 1) / (m - 1), m
                    note = (f'  [pilot predicted {est:.0f} s > {args.loop_budget:.0f} s: loop timed on {m} picks '
                            f'({lp["times"][0]:.1f} s) and extrapolated x{(n - 1) / (m - 1):.2f} to {n} picks; '
                            f'selections compared on the first {m} picks]')
                else:
                    lp = run(fl, N, n, d, 1, **kwl); t_loop, m_cmp = lp['times'][0], n
            else:
                lp = run(fl, N, n, d, 1, **kwl); t_loop, m_cmp = lp['times'][0], n
            loops[key] = (lp, t_loop, m_cmp, note)
        lp, t_loop, m_cmp, note = loops[key]
        same = lp['sel'][:m_cmp] == v['sel'][:m_cmp]
        print(f'{name}:')
        print(f'  vectorised (torch {kw.get("dtype", "float32")}): best of {args.repeats} = {best:.3f} s  '
              f'(all: {", ".join(f"{x:.3f}" for x in v["times"])}), peak extra RSS {v["extra_mb"]:.1f} MB')
        print(f'  loop reference (numpy float64): {t_loop:.1f} s, peak extra RSS {lp["extra_mb"]:.1f} MB{note}')
        print(f'  speed-up {t_loop / best:.0f}x; identical selection: {same}\n')
    print('# float32 selections may differ from the float64 loop where two candidates tie within float32 resolution')
    print(f'# load average at end {os.getloadavg()[0]:.2f} (other processes on this machine slow both columns)')


if __name__ == '__main__':
    main()
