set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'curves-vgg16.svg.tmp'
set title "vgg16: training curves (mean over seeds)"
set grid
set key outside right top
datafile = 'curves-vgg16.dat'
set multiplot layout 1,2 title "vgg16: training curves (mean over seeds)"
set xtics 1
set xlabel 'epoch'
set ylabel 'training loss (cross-entropy)'
set title 'training loss'
set key inside top right
plot datafile index 0 using 1:2 with linespoints lw 2 title "baseline", datafile index 1 using 1:2 with linespoints lw 2 title "C", datafile index 2 using 1:2 with linespoints lw 2 title "CT", datafile index 3 using 1:2 with linespoints lw 2 title "C0.4-0.6"
set ylabel 'test top-1 (%)'
set title 'test top-1 (AOM solid, DOM dashed)'
set key inside bottom right
plot datafile index 0 using 1:3 with linespoints lw 2 lc 1 title "baseline AOM", datafile index 1 using 1:3 with linespoints lw 2 lc 2 title "C AOM", datafile index 1 using 1:4 with linespoints lw 2 dt 2 lc 2 title "C DOM", datafile index 2 using 1:3 with linespoints lw 2 lc 3 title "CT AOM", datafile index 2 using 1:4 with linespoints lw 2 dt 2 lc 3 title "CT DOM", datafile index 3 using 1:3 with linespoints lw 2 lc 4 title "C0.4-0.6 AOM", datafile index 3 using 1:4 with linespoints lw 2 dt 2 lc 4 title "C0.4-0.6 DOM"
unset multiplot
