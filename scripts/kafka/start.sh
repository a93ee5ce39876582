#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker (KRaft, broker+controller in one JVM) on 127.0.0.1
# and waits until it answers metadata requests.
#
#   scripts/kafka/start.sh [--keep-data]
#
# Formats a fresh KRaft log directory first, unless --keep-data is given and the directory
# was formatted before (that restarts a broker with its topics, for restart tests).
# Idempotent: with a broker already up (per the pid file) it does nothing; a stale pid file
# (no such process, or not a broker) is removed. Port and state folder: see common.sh.
set -euo pipefail
source "$(dirname "$0")/common.sh"

keep_data=false
for arg in "$@"; do
    case "$arg" in
        --keep-data) keep_data=true ;;
        *) echo "kafka/start.sh: unknown argument $arg" >&2; exit 2 ;;
    esac
done

if pid="$(kafka_live_pid)"; then
    echo "kafka/start.sh: broker already running on 127.0.0.1:$KAFKA_PORT (pid $pid)" >&2
    exit 0
fi
rm -f "$KAFKA_PID_FILE"

"$KAFKA_SCRIPTS/fetch.sh"
mkdir -p "$KAFKA_DIR"
if (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then
    echo "kafka/start.sh: port $KAFKA_PORT is already taken by another process" >&2
    exit 1
fi

config="$KAFKA_DIR/server.properties"
data="$KAFKA_DIR/kraft-logs"
cat >"$config" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=-1
log.segment.bytes=268435456
PROPS

classpath="$KAFKA_JARS/*"
jvm=(java "-Xmx${WEIR_KAFKA_HEAP:-512m}" -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
     -Dlog4j2.configurationFile="$KAFKA_SCRIPTS/log4j2.properties" -Dkafka.logs.dir="$KAFKA_DIR"
     -cp "$classpath")
if ! $keep_data || [ ! -f "$data/meta.properties" ]; then
    rm -rf "$data"
    cluster_id="$("${jvm[@]}" kafka.tools.StorageTool random-uuid)"
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$config" >>"$KAFKA_LOG" 2>&1
fi

# setsid: the broker must not die with the shell (or the test process) that started it.
setsid nohup "${jvm[@]}" kafka.Kafka "$config" >>"$KAFKA_LOG" 2>&1 </dev/null &
echo $! >"$KAFKA_PID_FILE"

deadline=$((SECONDS + ${WEIR_KAFKA_START_TIMEOUT:-90}))
until python3 "$KAFKA_SCRIPTS/ready.py" 127.0.0.1 "$KAFKA_PORT"; do
    if ! kafka_live_pid >/dev/null; then
        echo "kafka/start.sh: the broker exited during start; last lines of $KAFKA_LOG:" >&2
        tail -n 30 "$KAFKA_LOG" >&2
        rm -f "$KAFKA_PID_FILE"
        exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
        echo "kafka/start.sh: the broker did not answer within ${WEIR_KAFKA_START_TIMEOUT:-90}s; see $KAFKA_LOG" >&2
        exit 1
    fi
    sleep 0.5
done
echo "kafka/start.sh: Apache Kafka $KAFKA_VERSION up on 127.0.0.1:$KAFKA_PORT (pid $(cat "$KAFKA_PID_FILE"))" >&2
