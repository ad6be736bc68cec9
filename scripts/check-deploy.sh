#!/usr/bin/env bash
# Checks of deploy/ without a container engine or a cluster (deploy/README.md, "Checks").
# Needs the tools scripts/setup.sh installs and target/release/slawatch (scripts/test.sh
# builds it first). A missing tool fails its checks: nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="$HOME/.cache/slawatch"
export PATH="$cache/bin:$cache/venv/bin:$PATH"
py="$cache/venv/bin/python"
bin="$PWD/target/release/slawatch"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
# check NAME COMMAND...: runs the command in a subshell with errexit in force (an `if`
# would switch it off inside functions), its output shown only when it fails.
check() {
    local name=$1 rc
    shift
    set +e
    (
        set -e
        "$@"
    ) >"$work/out" 2>&1
    rc=$?
    set -e
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
        echo "ok: $name"
    else
        failed=$((failed + 1))
        echo "FAIL: $name"
        sed 's/^/    /' "$work/out"
    fi
}

for tool in helm kustomize docker hadolint kubernetes-validate crdcheck systemd-analyze promtool curl java "$py" "$bin"; do
    check "tool $tool present" command -v "$tool"
done
check "docker compose plugin present" docker compose version

# --- Helm and kustomize: render, then validate what was rendered.
chart=deploy/helm/slawatch
check "helm lint (default values)" helm lint "$chart"
check "helm lint (example values)" helm lint "$chart" -f deploy/helm/example-values.yaml
render() { "$@" >"$out"; }
out="$work/helm-default.yaml" check "helm template (default values)" render helm template slawatch "$chart"
out="$work/helm-example.yaml" check "helm template (example values)" \
    render helm template prod "$chart" -f deploy/helm/example-values.yaml
out="$work/kustomize-base.yaml" check "kustomize build base" render kustomize build deploy/kustomize/base
out="$work/kustomize-example.yaml" check "kustomize build overlays/example" \
    render kustomize build deploy/kustomize/overlays/example
# A packaged chart carries the linked files' content: it renders the same rules from the archive.
package_and_render() {
    helm package "$chart" -d "$work/package"
    tar -tzf "$work/package"/slawatch-*.tgz | grep -qx slawatch/rules/slawatch.rules.yml
    tar -tzf "$work/package"/slawatch-*.tgz | grep -qx slawatch/files/slawatch.toml
    helm template slawatch "$work/package"/slawatch-*.tgz >"$work/helm-package.yaml"
}
check "helm package carries the linked rules and config" package_and_render
manifests=("$work"/helm-package.yaml "$work"/helm-default.yaml "$work"/helm-example.yaml "$work"/kustomize-base.yaml "$work"/kustomize-example.yaml)

# kubernetes-validate ships the schemas of the built-in kinds but none of CRDs: it only warns
# about those. Any other warning (a misspelt apiVersion, say) would skip validation, so it fails.
validate() {
    kubernetes-validate --strict "$1" | tee "$work/validate"
    if grep -v "^INFO .* passed for resource " "$work/validate" \
        | grep -v "^WARN .* Couldn't find schema for kind \(PrometheusRule\|ServiceMonitor\) with api version monitoring.coreos.com/v1 "; then
        return 1
    fi
    grep -q "passed for resource deployment/" "$work/validate"
}
for manifest in "${manifests[@]}"; do
    check "kubernetes-validate --strict $(basename "$manifest")" validate "$manifest"
done
# ServiceMonitor and PrometheusRule against the Prometheus Operator's Go types (scripts/crdcheck).
for manifest in "${manifests[@]}"; do
    check "crdcheck $(basename "$manifest")" crdcheck "$manifest"
done
check "PrometheusRule groups equal deploy/prometheus/rules" "$py" scripts/deploy_checks.py rules "${manifests[@]}"
check "stop timeouts exceed run.shutdown_grace" "$py" scripts/deploy_checks.py stop-timeouts "${manifests[@]}"
check "kustomize base copies equal their sources" "$py" scripts/deploy_checks.py check-sync
check "helm chart links to deploy/prometheus/rules and config/container.toml" \
    test "$(readlink $chart/rules)" = ../../prometheus/rules -a \
    "$(readlink $chart/files/slawatch.toml)" = ../../../../config/container.toml

check "every alert's runbook_url names its section of deploy/README.md" "$py" scripts/deploy_checks.py runbooks

# --- Every configuration deploy/ ships passes check-config, with the brokers from the
# environment as every deployment gives them.
export SLAWATCH__KAFKA__BROKERS=kafka:9092
helm_example_config() {
    "$py" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["config"], end="")' \
        deploy/helm/example-values.yaml >"$work/helm-example.toml"
    "$bin" check-config --config "$work/helm-example.toml"
}
for config in config/container.toml deploy/kustomize/overlays/example/slawatch.toml deploy/compose/slawatch.toml; do
    check "check-config $config" "$bin" check-config --config "$config"
done
check "check-config deploy/helm/example-values.yaml's config" helm_example_config
same_policies() {
    diff <(sed -n '/^\[\[policy\]\]/,$p' config/demo.toml) <(sed -n '/^\[\[policy\]\]/,$p' deploy/compose/slawatch.toml)
}
check "compose's policies equal config/demo.toml's" same_policies
unset SLAWATCH__KAFKA__BROKERS

# --- Compose.
compose=deploy/compose/compose.yaml
check "docker compose config" docker compose -f "$compose" config -q
# compose config does not look at bind-mount sources; a missing one would be created as a directory.
mounts_exist() {
    docker compose -f "$compose" config --format json \
        | "$py" -c '
import json, os, sys
missing = [v["source"] for s in json.load(sys.stdin)["services"].values()
           for v in s.get("volumes", []) if v["type"] == "bind" and not os.path.exists(v["source"])]
sys.exit("missing bind-mount sources: %s" % missing if missing else 0)'
}
check "compose bind-mount sources exist" mounts_exist
# Laid out as in the container: the rules beside prometheus.yml.
prometheus_config() {
    mkdir -p "$work/prometheus"
    cp deploy/compose/prometheus.yml "$work/prometheus/"
    cp -r deploy/prometheus/rules "$work/prometheus/rules"
    promtool check config "$work/prometheus/prometheus.yml"
}
check "promtool check config deploy/compose/prometheus.yml" prometheus_config

# compose's stack without containers: its Kafka settings on a broker from the tests' jars
# (scripts/setup.sh), its simulator command and its slawatch service (environment and
# configuration) on loopback ports. slawatch must turn ready, emit SLA events and stop with 0.
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
compose_rehearsal() {
    local dir="$work/rehearsal" libs="${SLAWATCH_KAFKA_LIBS:-$cache/kafka/libs}"
    local broker controller http i status events rc=0
    # Not local: the EXIT trap runs after the function has returned.
    kafka="" simulator="" slawatch=""
    broker="127.0.0.1:$(free_port)"
    controller="127.0.0.1:$(free_port)"
    http="127.0.0.1:$(free_port)"
    mkdir -p "$dir"
    trap 'kill $slawatch $simulator $kafka 2>/dev/null || true; wait' EXIT
    "$py" scripts/deploy_checks.py compose-kafka "$broker" "$controller" "$dir/data" >"$dir/server.properties"
    java -cp "$libs/*" kafka.tools.StorageTool format --cluster-id c2xhd2F0Y2gtZGVwbG95 \
        --config "$dir/server.properties" >/dev/null
    java -Xms256m -Xmx1g -cp "$libs/*" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 &
    kafka=$!
    for i in $(seq 1 120); do
        if (echo >"/dev/tcp/${broker%:*}/${broker#*:}") 2>/dev/null; then break; fi
        sleep 0.5
    done
    docker compose -f "$compose" config --format json >"$dir/compose.json"
    mapfile -t sim_args < <("$py" -c '
import json, sys
print("\n".join(json.load(open(sys.argv[1]))["services"]["simulator"]["command"]))' "$dir/compose.json")
    mapfile -t sw_env < <("$py" -c '
import json, sys
for k, v in json.load(open(sys.argv[1]))["services"]["slawatch"]["environment"].items():
    print(f"{k}={v}")' "$dir/compose.json")
    "$bin" "${sim_args[@]//kafka:9092/$broker}" >"$dir/simulator.log" 2>&1 &
    simulator=$!
    sleep 3 # the first records create the input topic
    env "${sw_env[@]//kafka:9092/$broker}" SLAWATCH__HTTP__LISTEN="$http" \
        "$bin" run --config deploy/compose/slawatch.toml >"$dir/slawatch.log" 2>&1 &
    slawatch=$!
    for i in $(seq 1 120); do
        status=$(curl -s -o /dev/null -w '%{http_code}' "http://$http/readyz" || true)
        events=$({ curl -s "http://$http/metrics" || true; } | awk '/^slawatch_sla_events_total/ { n += $2 } END { print n + 0 }')
        if [[ $status == 200 && $events -gt 0 ]]; then break; fi
        sleep 0.5
    done
    echo "/readyz: $status, SLA events: $events"
    kill -TERM "$slawatch"
    wait "$slawatch" || rc=$?
    slawatch=""
    echo "slawatch's exit status after SIGTERM: $rc"
    if [[ $status != 200 || $events -eq 0 || $rc -ne 0 ]]; then
        tail -n 20 "$dir/slawatch.log" "$dir/simulator.log" "$dir/kafka.log"
        return 1
    fi
}
check "compose rehearsal: Kafka settings, simulator, slawatch ready with SLA events, exit 0" compose_rehearsal

# --- Dockerfile and image.
check "hadolint deploy/Dockerfile" hadolint deploy/Dockerfile
# The build context must keep what cargo reads; .dockerignore takes whole-line patterns here.
context_complete() {
    local path
    for path in Cargo.toml Cargo.lock src/ benches/ config/ config/container.toml; do
        if grep -qxF "$path" .dockerignore || grep -qxF "${path%/}" .dockerignore; then
            echo ".dockerignore excludes $path"
            return 1
        fi
    done
}
check ".dockerignore keeps the build's inputs" context_complete

# The final stage laid out in a scratch root (its COPY sources must exist), then started as
# the image would start it, with brokers from the environment as in production.
image_runs() {
    local root="$work/image" port command
    mkdir -p "$root"
    "$py" scripts/deploy_checks.py image-layout "$root" >"$work/image.json"
    grep -qx 'listen = "0.0.0.0:9797"' "$root/etc/slawatch/slawatch.toml"
    if grep -q '^brokers' "$root/etc/slawatch/slawatch.toml"; then
        echo "the image config sets kafka.brokers"
        return 1
    fi
    port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mapfile -t command < <("$py" -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["argv"]))' "$work/image.json")
    mapfile -t image_env < <("$py" -c 'import json, sys; [print(f"{k}={v}") for k, v in json.load(open(sys.argv[1]))["env"].items()]' "$work/image.json")
    env -i PATH=/usr/bin:/bin "${image_env[@]}" SLAWATCH__KAFKA__BROKERS=embedded \
        SLAWATCH__HTTP__LISTEN="127.0.0.1:$port" "${command[@]}" >"$work/image.log" 2>&1 &
    server=$!
    # This runs in check's subshell: its own trap stops the server if a step fails.
    trap 'kill "$server" 2>/dev/null || true' EXIT
    local status="" i
    for i in $(seq 1 150); do
        status=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true)
        [[ $status == 200 ]] && break
        if ! kill -0 "$server" 2>/dev/null; then break; fi
        sleep 0.2
    done
    echo "/healthz: ${status:-no answer}"
    kill -TERM "$server"
    local rc=0
    wait "$server" || rc=$?
    trap - EXIT
    echo "exit status after SIGTERM: $rc"
    if [[ $status != 200 || $rc -ne 0 ]]; then
        cat "$work/image.log"
        return 1
    fi
}
check "image layout starts, /healthz 200, SIGTERM exits 0" image_runs

# --- systemd: verify needs ExecStart's binary to exist, so a copy points at the built one.
systemd_verify() {
    sed "s|^ExecStart=/usr/local/bin/slawatch |ExecStart=$bin |" deploy/systemd/slawatch.service \
        >"$work/slawatch.service"
    grep -q "^ExecStart=$bin run --config /etc/slawatch/slawatch.toml$" "$work/slawatch.service"
    systemd-analyze verify "$work/slawatch.service"
}
check "systemd-analyze verify deploy/systemd/slawatch.service" systemd_verify

echo "deploy checks: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
