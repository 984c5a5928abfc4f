# gnuplot curves.gp: test Recall@20 / NDCG@20 of LightGCN + ssm on Gowalla by epoch (curves.tsv)
set terminal pngcairo size 1200,480 font ",10" noenhanced
set output "curves.png"
set datafile separator "\t"
set multiplot layout 1,2 title "LightGCN (3 layers, d = 64) + ssm k = 1,024 on Gowalla: cosine vs dot-product scores, L2, rate cut"
set xlabel "epoch"
set grid
set key bottom right font ",9"
names = "cosine/0.1,no-L2 dot,L2=1e-4 dot,L2=1e-2 dot,L2=1e-2,cut@16 dot,L2=0.1 dot,L2=0.1,cut@36 dot,L2=3e-2,cut@16 dot,L2=5e-2,cut@16"
set ylabel "Recall@20"
set yrange [0.12:0.19]
plot for [i=0:7] "curves.tsv" index i using 2:3 with linespoints pt 7 ps 0.5 title word(names, i+1), \
     0.1830 with lines dt 2 lc rgb "black" title "published LightGCN (BPR, ~1000 epochs)"
set ylabel "NDCG@20"
set yrange [0.09:0.16]
plot for [i=0:7] "curves.tsv" index i using 2:4 with linespoints pt 7 ps 0.5 title word(names, i+1), \
     0.1554 with lines dt 2 lc rgb "black" title "published LightGCN"
unset multiplot
