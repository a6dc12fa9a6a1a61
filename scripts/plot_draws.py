#!/usr/bin/env python3
"""Issue 8, study (b): training loss per epoch of the K-draw runs against
uncontended training time (epoch x the run's fastest epoch, since a shared
machine inflates some epochs), as draws.dat + draws.gp, and draws.svg when
gnuplot is installed.

    scripts/plot_draws.py runs/issue8 docs/results/issue8
"""
import json
import os
import shutil
import subprocess
import sys

RUNS = [('draws1', 'K=1', 7, '#2166ac'), ('draws2-mean', 'K=2 mean', 5, '#b2182b'),
        ('draws2-min', 'K=2 min (loss of the chosen draw)', 9, '#1b7837')]


def main():
    if len(sys.argv) != 3:
        sys.exit('usage: scripts/plot_draws.py STUDY_DIR OUT_DIR')
    study, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    plots = []
    with open(os.path.join(out, 'draws.dat'), 'w') as dat:
        dat.write('# training loss per epoch against uncontended training time, one block per run\n')
        for index, (run, label, point, colour) in enumerate(RUNS):
            path = os.path.join(study, run, 'metrics.jsonl')
            rows = [json.loads(line) for line in open(path) if line.strip()]
            fastest = min(r['seconds'] for r in rows)
            dat.write('# %s: %d epochs, fastest epoch %.1f s\n' % (run, len(rows), fastest))
            for r in rows:
                dat.write('%.1f %.4f %d\n' % (r['epoch'] * fastest, r['train_loss'], r['epoch']))
            dat.write('\n\n')
            plots.append("'draws.dat' index %d with linespoints pt %d lw 2 lc rgb '%s' title '%s, %d epochs'"
                         % (index, point, colour, label, len(rows)))
    with open(os.path.join(out, 'draws.gp'), 'w') as gp:
        gp.write("set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'\n"
                 "set termoption noenhanced\nset output 'draws.svg'\n"
                 'set title "K shadow-weight draws per step at the same wall-clock budget"\n'
                 "set grid\nset key outside right top\n"
                 "set xlabel 'training time (s): epochs x the run''s fastest epoch'\n"
                 "set ylabel 'training loss (epoch mean)'\nplot " + ', \\\n     '.join(plots) + '\n')
    if shutil.which('gnuplot'):
        subprocess.run(['gnuplot', 'draws.gp'], cwd=out, check=True)


if __name__ == '__main__':
    main()
