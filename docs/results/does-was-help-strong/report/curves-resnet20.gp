set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'curves-resnet20.svg.tmp'
set title "resnet20: training curves (mean over seeds)"
set grid
set key outside right top
datafile = 'curves-resnet20.dat'
set multiplot layout 1,2 title "resnet20: training curves (mean over seeds)"
set xtics 6
set xlabel 'epoch'
set ylabel 'training loss (cross-entropy)'
set title 'training loss'
set key inside top right
plot datafile index 0 using 1:2 with linespoints lw 2 title "baseline", datafile index 1 using 1:2 with linespoints lw 2 title "C", datafile index 2 using 1:2 with linespoints lw 2 title "paper-C", datafile index 3 using 1:2 with linespoints lw 2 title "C-p0.5"
set ylabel 'test top-1 (%)'
set title 'test top-1 (AOM solid, DOM dashed)'
set key inside bottom right
plot datafile index 0 using 1:3 with linespoints lw 2 lc 1 title "baseline AOM", datafile index 1 using 1:3 with linespoints lw 2 lc 2 title "C AOM", datafile index 1 using 1:4 with linespoints lw 2 dt 2 lc 2 title "C DOM", datafile index 2 using 1:3 with linespoints lw 2 lc 3 title "paper-C AOM", datafile index 2 using 1:4 with linespoints lw 2 dt 2 lc 3 title "paper-C DOM", datafile index 3 using 1:3 with linespoints lw 2 lc 4 title "C-p0.5 AOM", datafile index 3 using 1:4 with linespoints lw 2 dt 2 lc 4 title "C-p0.5 DOM"
unset multiplot
