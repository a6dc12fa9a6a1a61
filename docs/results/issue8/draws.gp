set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'draws.svg'
set title "K shadow-weight draws per step at the same wall-clock budget"
set grid
set key outside right top
set xlabel 'training time (s): epochs x the run''s fastest epoch'
set ylabel 'training loss (epoch mean)'
plot 'draws.dat' index 0 with linespoints pt 7 lw 2 lc rgb '#2166ac' title 'K=1, 10 epochs', \
     'draws.dat' index 1 with linespoints pt 5 lw 2 lc rgb '#b2182b' title 'K=2 mean, 5 epochs', \
     'draws.dat' index 2 with linespoints pt 9 lw 2 lc rgb '#1b7837' title 'K=2 min (loss of the chosen draw), 5 epochs'
