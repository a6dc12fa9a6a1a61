set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'selection-resnet20.svg.tmp'
set title "resnet20: AOM, BatchNorm re-estimated per mode, with the epochs each seed selects (▲ on test, ● on validation)"
set grid
set key outside right top
datafile = 'selection-resnet20.dat'
set xlabel 'epoch'
set ylabel 'top-1 (%): test solid, validation dotted'
set key inside bottom right
set datafile missing 'NaN'
plot datafile index 0 using 1:2 with lines lw 2 lc 1 title "baseline", datafile index 0 using 1:3 with lines lw 1 dt 3 lc 1 notitle, datafile index 1 using 1:2 with points pt 9 ps 1.6 lc 1 title "best test epoch", datafile index 1 using 3:4 with points pt 7 ps 1.3 lc 1 title "validation-selected epoch", datafile index 2 using 1:2 with lines lw 2 lc 2 title "C", datafile index 2 using 1:3 with lines lw 1 dt 3 lc 2 notitle, datafile index 3 using 1:2 with points pt 9 ps 1.6 lc 2 notitle, datafile index 3 using 3:4 with points pt 7 ps 1.3 lc 2 notitle, datafile index 4 using 1:2 with lines lw 2 lc 3 title "paper-C", datafile index 4 using 1:3 with lines lw 1 dt 3 lc 3 notitle, datafile index 5 using 1:2 with points pt 9 ps 1.6 lc 3 notitle, datafile index 5 using 3:4 with points pt 7 ps 1.3 lc 3 notitle, datafile index 6 using 1:2 with lines lw 2 lc 4 title "C-p0.5", datafile index 6 using 1:3 with lines lw 1 dt 3 lc 4 notitle, datafile index 7 using 1:2 with points pt 9 ps 1.6 lc 4 notitle, datafile index 7 using 3:4 with points pt 7 ps 1.3 lc 4 notitle
