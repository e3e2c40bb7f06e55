# bench/README.md's plots, from the data files report.py writes.
# gnuplot -e "data='DIR'; out='DIR'" bench/plots.gp
#
# Every sample is drawn (empirical distribution functions, linear axes:
# nothing raised to a floor, negative values where they are).

set terminal pngcairo size 1200,760 font ",9"
set grid
set yrange [0:1.02]
set key bottom right

systems = "module client-go python"
titles = "'this module' 'client-go' 'Python client'"
servers = "real emu5 emu50 emu200"
stitles = "'real kube-apiserver' 'emulator 5 ms' 'emulator 50 ms' 'emulator 200 ms'"
colors = "#1f77b4 #2ca02c #ff7f0e #d62728"
timings = "default tight"
ttitles = "'15/10/2 s' '4/3/0.5 s'"

do for [kind in "crash handoff"] {
    set output out.'/'.(kind eq 'crash' ? 'takeover' : 'handoff').'.png'
    set multiplot layout 2,3 title (kind eq 'crash' ? \
        "kill -9 the holder: successor's acquireTime - (last renewTime + lease), ms" : \
        "graceful stop: successor's acquireTime - release record's renewTime, ms (Python: it never releases: - (last renewTime + lease))")
    do for [t=1:2] {
        do for [s=1:3] {
            set title word(titles, s).', '.word(ttitles, t)
            set xlabel "ms"
            set ylabel "fraction"
            plot for [v=1:4] data.'/'.kind.'_'.word(timings, t).'_'.word(systems, s).'_'.word(servers, v).'.dat' \
                using 1:2 with steps lw 2 lc rgb word(colors, v) title word(stitles, v)
        }
    }
    unset multiplot
}

# API cost against candidates, real kube-apiserver, 15/10/2 s
set output out.'/cost.png'
set terminal pngcairo size 1000,420 font ",9"
set multiplot layout 1,2 title "real kube-apiserver, 15/10/2 s, one lock"
set logscale x
set xtics (3, 10, 100, 1000)
set xrange [2:1500]
set autoscale y
set key top left
set xlabel "candidates"
set title "requests per retry period (all verbs)"
set ylabel "requests"
plot for [s=0:2] data.'/cost.dat' index s using 1:3 \
    with linespoints lw 2 pt 7 title word(titles, s+1)
set title "kube-apiserver CPU per retry period, above idle"
set ylabel "ms"
plot for [s=0:2] data.'/cost.dat' index s using 1:4 \
    with linespoints lw 2 pt 7 title word(titles, s+1)
unset multiplot
