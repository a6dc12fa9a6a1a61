set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'curves-small_cnn.svg.tmp'
set title "small_cnn: training curves (mean over seeds)"
set grid
set key outside right top
datafile = 'curves-small_cnn.dat'
set multiplot layout 1,2 title "small_cnn: training curves (mean over seeds)"
set xtics 1
set xlabel 'epoch'
set ylabel 'training loss (cross-entropy)'
set title 'training loss'
set key inside top right
plot datafile index 0 using 1:2 with linespoints lw 2 title "baseline", datafile index 1 using 1:2 with linespoints lw 2 title "CT", datafile index 2 using 1:2 with linespoints lw 2 title "CT-p0.5", datafile index 3 using 1:2 with linespoints lw 2 title "CT-p0.25", datafile index 4 using 1:2 with linespoints lw 2 title "CT-filter", datafile index 5 using 1:2 with linespoints lw 2 title "CT-p0.5-filter", datafile index 6 using 1:2 with linespoints lw 2 title "CT-p0.25-filter"
set ylabel 'test top-1 (%)'
set title 'test top-1 (AOM solid, DOM dashed)'
set key inside bottom right
plot datafile index 0 using 1:3 with linespoints lw 2 lc 1 title "baseline AOM", datafile index 1 using 1:3 with linespoints lw 2 lc 2 title "CT AOM", datafile index 1 using 1:4 with linespoints lw 2 dt 2 lc 2 title "CT DOM", datafile index 2 using 1:3 with linespoints lw 2 lc 3 title "CT-p0.5 AOM", datafile index 2 using 1:4 with linespoints lw 2 dt 2 lc 3 title "CT-p0.5 DOM", datafile index 3 using 1:3 with linespoints lw 2 lc 4 title "CT-p0.25 AOM", datafile index 3 using 1:4 with linespoints lw 2 dt 2 lc 4 title "CT-p0.25 DOM", datafile index 4 using 1:3 with linespoints lw 2 lc 5 title "CT-filter AOM", datafile index 4 using 1:4 with linespoints lw 2 dt 2 lc 5 title "CT-filter DOM", datafile index 5 using 1:3 with linespoints lw 2 lc 6 title "CT-p0.5-filter AOM", datafile index 5 using 1:4 with linespoints lw 2 dt 2 lc 6 title "CT-p0.5-filter DOM", datafile index 6 using 1:3 with linespoints lw 2 lc 7 title "CT-p0.25-filter AOM", datafile index 6 using 1:4 with linespoints lw 2 dt 2 lc 7 title "CT-p0.25-filter DOM"
unset multiplot
