# Shared settings of the Kafka broker scripts (sourced, not run).
#
# Environment (all optional):
#   WEIR_KAFKA_PORT             client port on 127.0.0.1 (default 9092)
#   WEIR_KAFKA_CONTROLLER_PORT  KRaft controller port (default: client port + 1)
#   WEIR_KAFKA_DIR              broker state: config, KRaft log dir, pid file, log
#                               (default .cache/kafka/broker-<port>)
#   WEIR_KAFKA_HEAP             JVM heap (default 512m)
KAFKA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KAFKA_SCRIPTS="$KAFKA_ROOT/scripts/kafka"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_SCRIPTS/pom.xml")"
KAFKA_JARS="$KAFKA_ROOT/.cache/kafka/jars-$KAFKA_VERSION"
KAFKA_PORT="${WEIR_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${WEIR_KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_DIR="${WEIR_KAFKA_DIR:-$KAFKA_ROOT/.cache/kafka/broker-$KAFKA_PORT}"
KAFKA_PID_FILE="$KAFKA_DIR/broker.pid"
KAFKA_LOG="$KAFKA_DIR/broker.log"

# Prints the broker's pid if the pid file names a live Kafka broker process.
kafka_live_pid() {
    [ -f "$KAFKA_PID_FILE" ] || return 1
    local pid
    pid="$(cat "$KAFKA_PID_FILE" 2>/dev/null)"
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    # A recycled pid belongs to some other program: only a java kafka.Kafka counts.
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
    echo "$pid"
}
