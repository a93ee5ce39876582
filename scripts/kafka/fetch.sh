#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars (version pinned in pom.xml) from Maven Central into
# .cache/kafka/jars-<version>/. Idempotent: does nothing when they are there already.
# Maven checks each download against the repository's checksums (--strict-checksums).
set -euo pipefail
source "$(dirname "$0")/common.sh"

if [ -f "$KAFKA_JARS/.complete" ]; then
    exit 0
fi
command -v mvn >/dev/null || { echo "kafka/fetch.sh: Maven (mvn) is needed to fetch the broker" >&2; exit 1; }
command -v java >/dev/null || { echo "kafka/fetch.sh: Java 17+ is needed to run the broker" >&2; exit 1; }
echo "kafka/fetch.sh: fetching Apache Kafka $KAFKA_VERSION jars into $KAFKA_JARS" >&2
staging="$KAFKA_JARS.partial"
rm -rf "$staging"
mvn -B -q -Dstyle.color=never --strict-checksums -f "$KAFKA_SCRIPTS/pom.xml" \
    dependency:copy-dependencies -Dkafka.jars="$staging" >&2
ls "$staging"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null
rm -rf "$KAFKA_JARS"
mv "$staging" "$KAFKA_JARS"
touch "$KAFKA_JARS/.complete"
