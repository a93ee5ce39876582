#!/usr/bin/env bash
# Stops the broker started by start.sh (by the pid in its pid file): SIGTERM, then SIGKILL if
# it has not exited within 30 s. Does nothing when no broker is running.
set -euo pipefail
source "$(dirname "$0")/common.sh"

if ! pid="$(kafka_live_pid)"; then
    rm -f "$KAFKA_PID_FILE"
    exit 0
fi
kill -TERM "$pid"
deadline=$((SECONDS + 30))
while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
        echo "kafka/stop.sh: broker $pid ignored SIGTERM for 30 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        break
    fi
    sleep 0.2
done
rm -f "$KAFKA_PID_FILE"
echo "kafka/stop.sh: broker on 127.0.0.1:$KAFKA_PORT stopped" >&2
