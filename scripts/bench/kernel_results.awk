# results.tsv lines from one kernel's output of scripts/kernels/payloads/pingpong,
# for scripts/benchmark:
#
#   awk -v k=KERNEL -f scripts/bench/kernel_results.awk target/kernels/results/KERNEL.out
#
# "PINGPONG MODE ROUND ROUND_TRIPS SECONDS" becomes µs per round trip of that
# mode and round; "UNSUPPORTED BACKEND" a line saying the kernel cannot run it.
$1 == "PINGPONG" && $4 > 0 {
    printf "kernels\t%s:%s\t%s\tus_per_rt\t%.3f\n", k, $2, $3, $5 * 1000000 / $4 }
$1 == "UNSUPPORTED" { printf "kernels\t%s:%s\t0\tunsupported\t1\n", k, $2 }
