set terminal svg size 900,520 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'macs-resnet20.svg.tmp'
set title "resnet20: top-1 against MACs, AOM and DOM per policy"
set grid
set key outside right top
datafile = 'macs-resnet20.dat'
set xlabel 'MACs per image (millions)'
set ylabel 'test top-1 (%), mean ± sd over seeds'
set offsets graph 0.08, graph 0.08, graph 0.08, graph 0.08
plot datafile index 0 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 title "baseline (AOM → DOM)", datafile index 0 using 1:2:4 with labels offset char 1,1 notitle, datafile index 1 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 title "C (AOM → DOM)", datafile index 1 using 1:2:4 with labels offset char 1,1 notitle, datafile index 2 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 title "paper-C (AOM → DOM)", datafile index 2 using 1:2:4 with labels offset char 1,1 notitle, datafile index 3 using 1:2:3 with yerrorlines lw 2 pt 7 ps 1.3 title "C-p0.5 (AOM → DOM)", datafile index 3 using 1:2:4 with labels offset char 1,1 notitle
