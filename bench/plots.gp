# The two plots of bench/README.md, from the data files report.py writes.
# gnuplot -e "data='DIR'; out='DIR'" bench/plots.gp

set terminal pngcairo size 800,520 font ",10"
set grid

# crash failover: the next holder's write after the dead holder's lease
set output out.'/failover.png'
set title "kill -9 the holder: next holder's write - (last write + lease)"
set xlabel "excess over the lease (ms, log scale)"
set ylabel "fraction of takeovers"
set logscale x
set xrange [0.5:3000]
set yrange [0:1.02]
set key below
set arrow 1 from 10,0 to 10,1.02 nohead dt 2 lc rgb "#555555"
set arrow 2 from 50,0 to 50,1.02 nohead dt 2 lc rgb "#555555"
set label 1 "target: median <= 10 ms" at 10,0.5 center rotate by 90 \
    offset 1,0 tc rgb "#555555"
set label 2 "target: max <= 50 ms" at 50,0.5 center rotate by 90 \
    offset -1,0 tc rgb "#555555"
plot data.'/failover_module.dat' using 1:2 with steps lw 2 \
         lc rgb "#1f77b4" title 'this module, 3 replicas', \
     data.'/failover_module100.dat' using 1:2 with steps lw 2 dt 3 \
         lc rgb "#1f77b4" title 'this module, 100 candidates', \
     data.'/failover_model.dat' using 1:2 with steps lw 2 \
         lc rgb "#2ca02c" title 'client-go (model), 3 replicas', \
     data.'/failover_python.dat' using 1:2 with steps lw 2 \
         lc rgb "#d62728" title 'Python client, 3 replicas'

# API requests per retry period in steady state
unset arrow
unset label
set output out.'/requests.png'
set title "API requests per retry period in steady state (lease 4 s, retry 0.5 s)"
set xlabel "candidates"
set ylabel "requests per retry period (log scale)"
set logscale xy
set xrange [2.5:130]
set yrange [0.5:200]
set key inside top left vertical maxcols 1
set xtics (3, 10, 100)
plot data.'/requests.dat' using 1:4 with linespoints lw 2 pt 7 \
         lc rgb "#d62728" title 'Python client (GET + PUT)', \
     data.'/requests.dat' using 1:3 with linespoints lw 2 pt 5 \
         lc rgb "#2ca02c" title 'client-go (model; GET + PUT)', \
     data.'/requests.dat' using 1:2 with linespoints lw 2 pt 9 \
         lc rgb "#1f77b4" title 'this module (all verbs: PUT only)'
