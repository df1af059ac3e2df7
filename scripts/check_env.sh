#!/usr/bin/env bash
# Checks the two things w2vspark cannot install by itself: Python >= 3.11 and Java >= 17.
# Usage: scripts/check_env.sh [PYTHON]
set -u
PY="${1:-python3}"
ok=1
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: '$PY' not found. w2vspark needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  ok=0
elif ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "error: $("$PY" --version 2>&1) is too old: w2vspark needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)." >&2
  ok=0
elif ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "error: $PY has no venv/ensurepip module (on Debian/Ubuntu: apt-get install python3-venv)." >&2
  ok=0
fi
JAVA="java"
[ -n "${JAVA_HOME:-}" ] && JAVA="$JAVA_HOME/bin/java"
if ! command -v "$JAVA" >/dev/null 2>&1; then
  echo "error: Java not found. Spark needs Java 17 or newer: install it (Debian/Ubuntu: apt-get install openjdk-17-jre-headless) or set JAVA_HOME." >&2
  ok=0
else
  ver=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
  major=${ver%%.*}
  [ "$major" = "1" ] && major=$(echo "$ver" | cut -d. -f2)
  if ! [ "$major" -ge 17 ] 2>/dev/null; then
    echo "error: Java $ver found at $(command -v "$JAVA"); Spark 4 needs Java 17 or newer (set JAVA_HOME)." >&2
    ok=0
  fi
fi
[ $ok -eq 1 ] || exit 1
