#!/usr/bin/env bash
# Run a w2vspark job with spark-submit on any master.
#
#   ./spark-submit.sh [spark-submit options] jobs/JOB.py [--config FILE] [--set section.key=value ...]
#
# - --master defaults to local[*]; spark://..., yarn and k8s://... pass through with every other option.
# - The current w2vspark source is zipped into build/ and shipped with --py-files, so executors on other
#   hosts import the same code as the driver.
# - conf/spark-defaults.conf is the properties file unless --properties-file is given.
# - spark-submit comes from $SPARK_HOME, else from the installed pyspark. The Python used is $W2V_PYTHON,
#   else .venv/bin/python, else python3; PYSPARK_PYTHON defaults to it (set PYSPARK_PYTHON to the
#   executors' interpreter on a cluster whose hosts have Python elsewhere).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "spark-submit.sh: error: $*" >&2; exit 2; }

if [ -n "${W2V_PYTHON:-}" ]; then PY="$W2V_PYTHON"
elif [ -x "$HERE/.venv/bin/python" ]; then PY="$HERE/.venv/bin/python"
else PY="$(command -v python3 || true)"; fi
[ -n "$PY" ] && [ -x "$PY" ] || die "no Python found: run 'make test' once to create .venv, or set W2V_PYTHON"

"$HERE/scripts/check_env.sh" "$PY" >/dev/null || { "$HERE/scripts/check_env.sh" "$PY"; exit 2; }

if [ -n "${SPARK_HOME:-}" ]; then
  SUBMIT="$SPARK_HOME/bin/spark-submit"
  [ -x "$SUBMIT" ] || die "SPARK_HOME=$SPARK_HOME has no bin/spark-submit"
else
  PYSPARK_DIR=$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))' 2>/dev/null) \
    || die "pyspark is not installed for $PY (run 'make test' once, or set SPARK_HOME)"
  SUBMIT="$PYSPARK_DIR/bin/spark-submit"
  [ -x "$SUBMIT" ] || die "no spark-submit in $PYSPARK_DIR/bin"
fi

# Split the arguments: spark-submit options, the job script, the job's own arguments.
opts=() ; job="" ; job_args=()
has_master=0 ; has_props=0 ; has_java_opts=0
flag_only=" --verbose --supervise --help --version --usage-error --kill --status "
while [ $# -gt 0 ]; do
  a="$1"
  if [ -z "$job" ]; then
    case "$a" in
      *.py)
        job="$a"; shift; job_args=("$@"); break ;;
      --master|--master=*) has_master=1 ;;
      --properties-file|--properties-file=*) has_props=1 ;;
      --driver-java-options|--driver-java-options=*) has_java_opts=1 ;;
    esac
    opts+=("$a")
    if [[ "$a" == --* && "$a" != *=* && "$flag_only" != *" $a "* && $# -gt 1 ]]; then
      opts+=("$2"); shift
    fi
    shift
  fi
done
[ -n "$job" ] || die "no job given; usage: ./spark-submit.sh [spark-submit options] jobs/JOB.py [--config FILE] [--set k=v ...]"
[ -f "$job" ] || die "job script not found: $job (jobs are: $(cd "$HERE" && ls jobs/*.py | tr '\n' ' '))"

[ $has_master -eq 1 ] || opts=(--master 'local[*]' "${opts[@]}")
[ $has_props -eq 1 ] || opts=(--properties-file "$HERE/conf/spark-defaults.conf" "${opts[@]}")
[ $has_java_opts -eq 1 ] || opts=(--driver-java-options "-Dlog4j2.configurationFile=file:$HERE/conf/log4j2.properties -XX:+UseParallelGC" "${opts[@]}")

mkdir -p "$HERE/build"
ZIP="$HERE/build/w2vspark.zip"
"$PY" - "$HERE" "$ZIP" <<'PYEOF'
import os, sys, zipfile
root, target = sys.argv[1], sys.argv[2]
tmp = target + ".tmp"
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
    for d, _, files in os.walk(os.path.join(root, "w2vspark")):
        for f in sorted(files):
            if f.endswith(".py"):
                full = os.path.join(d, f)
                z.write(full, os.path.relpath(full, root))
os.replace(tmp, target)
PYEOF

# The optional compiled kernel helper (built by pip install when a C compiler exists) goes to the executors with
# --files: PySpark puts that folder on the Python workers' path. Executors whose platform or Python version
# differ fail to import it and use the numpy code path, with identical results.
NATIVE=$("$PY" -c 'import w2vspark_native; print(w2vspark_native.__file__)' 2>/dev/null || true)
if [ -n "$NATIVE" ] && [ -f "$NATIVE" ]; then
  merged=0
  for i in "${!opts[@]}"; do
    case "${opts[$i]}" in
      --files) opts[$((i + 1))]="${opts[$((i + 1))]},$NATIVE"; merged=1 ;;
      --files=*) opts[$i]="${opts[$i]},$NATIVE"; merged=1 ;;
    esac
  done
  [ $merged -eq 1 ] || opts+=(--files "$NATIVE")
fi

export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$PY}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PY}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$HERE"
exec "$SUBMIT" "${opts[@]}" --py-files "$ZIP" "$job" "${job_args[@]}"
