set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'dom-search.svg'
set title "DOM candidates on the validation split: top-1 against MACs"
set grid
set key outside right top
datafile = 'dom-search.dat'
set xlabel 'DOM MACs per image (millions)'
set ylabel 'validation top-1 (%)'
plot datafile index 0 with points pt 7 ps 0.8 lc rgb '#999999' title 'candidates', datafile index 1 with linespoints pt 7 lw 2 lc rgb '#2166ac' title 'Pareto front', datafile index 2 with points pt 6 ps 2.5 lw 2 lc rgb '#b2182b' title 'chosen', 58.04 with lines dt 2 lc rgb '#000000' title 'AOM'
