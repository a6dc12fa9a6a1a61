set terminal svg size 900,340 dynamic font 'Helvetica,13' background '#ffffff'
set termoption noenhanced
set output 'kernels-small_cnn.svg.tmp'
set title "small_cnn CT, layer conv2: first 8 kernels as PW (top) and DOM shadow weights (bottom)"
set grid
set key outside right top
datafile = 'kernels-small_cnn.dat'
set size ratio -1
set yrange [6.5:-0.5]
set xrange [-0.5:30.5]
set palette defined (-1 '#2166ac', 0 '#f7f7f7', 1 '#b2182b')
set cbrange [-0.170951:0.170951]
set cblabel 'weight value'
unset grid
set xtics out nomirror ('0' 1, '1' 5, '2' 9, '3' 13, '4' 17, '5' 21, '6' 25, '7' 29)
set xlabel 'output filter (its kernel on input channel 0), 3x3 taps each'
set ytics ('PW' 1, 'SW (DOM)' 5)
set datafile missing 'NaN'
plot datafile matrix with image notitle
