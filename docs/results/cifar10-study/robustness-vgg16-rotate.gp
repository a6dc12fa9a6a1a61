set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'robustness-vgg16-rotate.svg.tmp'
set title "vgg16: top-1 drop under test-time rotate"
set grid
set key outside right top
datafile = 'robustness-vgg16-rotate.dat'
set xlabel 'largest rotation angle (degrees)'
set ylabel 'top-1 drop rate (%, relative to clean)'
plot datafile index 0 using 1:2 with linespoints lw 2 pt 7 lc 1 dt 1 title "baseline AOM", datafile index 1 using 1:2 with linespoints lw 2 pt 7 lc 2 dt 1 title "C AOM", datafile index 2 using 1:2 with linespoints lw 2 pt 7 lc 2 dt 2 title "C DOM", datafile index 3 using 1:2 with linespoints lw 2 pt 7 lc 3 dt 1 title "CT AOM", datafile index 4 using 1:2 with linespoints lw 2 pt 7 lc 3 dt 2 title "CT DOM", datafile index 5 using 1:2 with linespoints lw 2 pt 7 lc 4 dt 1 title "C0.4-0.6 AOM", datafile index 6 using 1:2 with linespoints lw 2 pt 7 lc 4 dt 2 title "C0.4-0.6 DOM"
