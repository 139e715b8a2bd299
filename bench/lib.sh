# Helpers for bench/<area>/run scripts.

# median of numbers given as arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# time_cmd OUTVAR_SECONDS OUTVAR_RSS_KB cmd...: wall seconds and peak RSS (KiB) of a command;
# its CPU seconds (user + sys) are left in $bench_cpu.
time_cmd() {
  local __s=$1 __r=$2; shift 2
  local tf; tf=$(mktemp)
  /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >/dev/null 2>"$tf.err" || { cat "$tf.err" >&2; rm -f "$tf" "$tf.err"; return 1; }
  local __u __y
  read -r "$__s" "$__r" __u __y <"$tf"
  bench_cpu=$(echo "$__u + $__y" | bc -l)
  rm -f "$tf" "$tf.err"
}
