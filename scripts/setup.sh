#!/usr/bin/env bash
# Installs what the test suite and benchmarks need beyond the Rust toolchain, once per machine:
# - Apache Kafka's broker: its jars and their runtime dependencies, copied from Maven Central
#   with the machine's Maven (scripts/kafka/pom.xml names the version) into
#   ~/.cache/slawatch/kafka/libs, where the tests find it (or $SLAWATCH_KAFKA_LIBS); skipped
#   when that version is there. It runs on the machine's Java 17.
# - Prometheus, promtool, Alertmanager and amtool: Debian's `prometheus` and
#   `prometheus-alertmanager` packages (skipped when all four are there).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
apt_install() {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

if command -v prometheus >/dev/null && command -v promtool >/dev/null \
    && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; then
    echo "setup: prometheus and alertmanager present"
else
    echo "setup: installing Debian's prometheus and prometheus-alertmanager packages"
    apt_install prometheus prometheus-alertmanager
fi

if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    echo "setup: installing Java 17 and Maven (Debian's packages)"
    apt_install openjdk-17-jre-headless maven
fi

kafka_version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)
kafka_dir="${SLAWATCH_KAFKA_LIBS:-$HOME/.cache/slawatch/kafka/libs}"
if [[ -f "$kafka_dir/kafka_2.13-$kafka_version.jar" ]]; then
    echo "setup: Apache Kafka $kafka_version present in $kafka_dir"
else
    echo "setup: copying Apache Kafka $kafka_version from Maven Central into $kafka_dir"
    rm -rf "$kafka_dir"
    mvn -q -B -Dstyle.color=never -f scripts/kafka/pom.xml dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$kafka_dir"
fi
