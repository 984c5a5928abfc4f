# gnuplot negatives.gp: test Recall@20 / NDCG@20 of LightGCN + ssm on Gowalla by epoch for k shared negatives (negatives.tsv)
set terminal pngcairo size 1200,480 font ",10" noenhanced
set output "negatives.png"
set datafile separator "\t"
set multiplot layout 1,2 title "LightGCN (3 layers, d = 64) + ssm on Gowalla, dot scores, L2 3e-2, rate cut 5x after epoch 16 (unless named): number of negatives k"
set xlabel "epoch"
set grid
set key bottom right font ",9"
stats "negatives.tsv" using 2 nooutput
n = STATS_blocks
# block order as written by the table script: one block per run
names = "k=1024 k=4096 k=8192 k=8192,cut@24 k=8192,L2=5e-2"
set ylabel "Recall@20"
set xrange [0:62]
set yrange [0.14:0.19]
plot for [i=0:n-1] "negatives.tsv" index i using 2:3 with linespoints pt 7 ps 0.5 title word(names, i+1), \
     0.1830 with lines dt 2 lc rgb "black" title "published LightGCN (BPR, ~1000 epochs)"
set ylabel "NDCG@20"
set yrange [0.11:0.16]
plot for [i=0:n-1] "negatives.tsv" index i using 2:4 with linespoints pt 7 ps 0.5 title word(names, i+1), \
     0.1554 with lines dt 2 lc rgb "black" title "published LightGCN"
unset multiplot
