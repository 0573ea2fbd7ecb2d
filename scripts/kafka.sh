#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller in one JVM) for development
# and CI. The broker jars come from Maven Central through `mvn`, so neither
# Docker nor a release tarball is needed.
#
# Usage: scripts/kafka.sh start|stop|restart|status|bootstrap
#        scripts/kafka.sh create-topic NAME [PARTITIONS]
#
# Environment:
#   KAFKA_PORT             PLAINTEXT listener on 127.0.0.1 (default 19092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener (default 19093)
#   KAFKA_VERSION          org.apache.kafka:kafka_2.13 version (default 3.9.2)
#   KAFKA_DATA             data, config, pid and log dir (default <repo>/.kafka)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker (default 60)
#   SESSIONSTREAM_CACHE    jar cache root (default ~/.cache/sessionstream); the
#                          jars live in <root>/kafka-<version>
#
# A second broker, e.g. Kafka 4.x beside the default 3.9 one, needs its own
# ports and data dir:
#   KAFKA_VERSION=4.1.0 KAFKA_PORT=19192 KAFKA_CONTROLLER_PORT=19193 \
#       KAFKA_DATA=.kafka/kafka4 scripts/kafka.sh start
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(dirname "$script_dir")"

port="${KAFKA_PORT:-19092}"
ctrl_port="${KAFKA_CONTROLLER_PORT:-19093}"
# 3.9.x is the suite's broker; tests/kafka/test_kafka4.py runs a 4.x one
# beside it (see docs/kafka.md, "Kafka 4.x").
version="${KAFKA_VERSION:-3.9.2}"
major="${version%%.*}"
[[ "$major" =~ ^[0-9]+$ ]] || major=0
# The logging binding the 3.9 release tarball ships.
slf4j_version="1.7.36"
reload4j_version="1.2.25"
# 4.x logs through log4j2 (its kafka-server pulls in log4j-core) and its
# tarball binds slf4j 1.7 to it with log4j-slf4j-impl: the log4j2 release
# of Kafka 4.1.
log4j2_version="2.24.3"
# Pinned so that Maven does not pick a plugin release needing a newer Maven.
dep_plugin="org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
start_timeout="${KAFKA_START_TIMEOUT:-60}"

cache_root="${SESSIONSTREAM_CACHE:-$HOME/.cache/sessionstream}"
kafka_home="$cache_root/kafka-$version"
libs="$kafka_home/libs"

data="${KAFKA_DATA:-$repo_root/.kafka}"
mkdir -p "$data"
data="$(cd "$data" && pwd)"
props="$data/server.properties"
log_dirs="$data/kraft-logs"
pid_file="$data/kafka.pid"
log_file="$data/kafka.log"
if ((major >= 4)); then
    server_log4j="$data/log4j2.properties"
    tools_log4j="$data/tools-log4j2.properties"
    log4j_opt="-Dlog4j2.configurationFile="
else
    server_log4j="$data/log4j.properties"
    tools_log4j="$data/tools-log4j.properties"
    log4j_opt="-Dlog4j.configuration=file:"
fi

die() {
    echo "kafka.sh: $*" >&2
    exit 1
}

bootstrap() {
    echo "127.0.0.1:$port"
}

# Pid of the running broker, or nothing. The command line is checked too so
# that a stale pid file whose pid got reused does not count as "running".
running_pid() {
    local pid
    [[ -f "$pid_file" ]] || return 0
    pid="$(<"$pid_file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    if [[ -r "/proc/$pid/cmdline" ]] &&
        ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka'; then
        return 0
    fi
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Serialises start/stop on one data dir (e.g. parallel test workers).
lock_data() {
    exec 9>"$data/.lock"
    flock -w 180 9 || die "timed out waiting for $data/.lock"
}

# Downloads kafka_2.13, the tools module (TopicCommand) and their runtime
# dependencies once into the cache.
fetch_jars() {
    [[ -f "$kafka_home/.complete" ]] && return 0
    command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
    mkdir -p "$kafka_home"
    # The cache may be shared by several data dirs (parallel CI jobs).
    exec 8>"$kafka_home/.lock"
    flock -w 600 8 || die "timed out waiting for $kafka_home/.lock"
    if [[ ! -f "$kafka_home/.complete" ]]; then
        download_jars
    fi
    exec 8>&-
}

logging_deps() {
    if ((major >= 4)); then
        cat <<EOF
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$log4j2_version</version>
    </dependency>
EOF
        return 0
    fi
    cat <<EOF
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$slf4j_version</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>$reload4j_version</version>
    </dependency>
EOF
}

download_jars() {
    cat >"$kafka_home/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.sessionstream</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$version</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$version</version>
    </dependency>
$(logging_deps)
  </dependencies>
</project>
EOF
    echo "kafka.sh: fetching kafka_2.13 $version and its dependencies with Maven..." >&2
    rm -rf "$libs"
    if ! mvn -q -B -f "$kafka_home/pom.xml" "$dep_plugin:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$libs" >"$kafka_home/mvn.log" 2>&1; then
        tail -n 40 "$kafka_home/mvn.log" >&2
        die "Maven could not fetch kafka_2.13 $version (full log: $kafka_home/mvn.log)"
    fi
    [[ -f "$libs/kafka_2.13-$version.jar" ]] ||
        die "kafka_2.13-$version.jar missing after the Maven run (see $kafka_home/mvn.log)"
    # Marks the libs dir as whole; an interrupted fetch is redone next time.
    touch "$kafka_home/.complete"
}

# Short-lived JVM for StorageTool/TopicCommand; logs only warnings, to stderr.
run_tool() {
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        "$log4j_opt$tools_log4j" -cp "$libs/*" "$@"
}

write_config() {
    # Rewritten on every start so that port changes take effect; the storage
    # identity lives in meta.properties under log.dirs, not here.
    cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$log_dirs
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
# This broker only ever holds test traffic.
log.retention.hours=24
EOF
    if ((major >= 4)); then
        write_log4j2_config
        return 0
    fi
    cat >"$server_log4j" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.authorizer.logger=WARN
EOF
    cat >"$tools_log4j" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
}

# The same logging as write_config's log4j 1 files, for 4.x's log4j2.
write_log4j2_config() {
    cat >"$server_log4j" <<'EOF'
status=warn
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
logger.request.name=kafka.request.logger
logger.request.level=WARN
logger.state.name=state.change.logger
logger.state.level=WARN
logger.authorizer.name=kafka.authorizer.logger
logger.authorizer.level=WARN
EOF
    cat >"$tools_log4j" <<'EOF'
status=warn
appender.stderr.type=Console
appender.stderr.name=STDERR
appender.stderr.target=SYSTEM_ERR
appender.stderr.layout.type=PatternLayout
appender.stderr.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.stderr.ref=STDERR
EOF
}

format_storage() {
    [[ -f "$log_dirs/meta.properties" ]] && return 0
    local cluster_id
    cluster_id="$(run_tool kafka.tools.StorageTool random-uuid | tail -n 1)"
    [[ -n "$cluster_id" ]] || die "StorageTool random-uuid printed nothing"
    run_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --ignore-formatted >&2
}

# A metadata round trip through the admin client: proves the broker is
# registered and serving, not merely that the port accepts connections.
metadata_ok() {
    timeout "$1" java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        "$log4j_opt$tools_log4j" -cp "$libs/*" \
        org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap)" --list \
        >/dev/null 2>&1
}

# SIGTERM, up to 30 s for a clean shutdown, then SIGKILL.
kill_broker() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "kafka.sh: pid $pid still alive after 30s, sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
    fi
    rm -f "$pid_file"
}

# A broker that did not come up is stopped so that the next start begins
# from a clean state instead of reporting a half-started process as running.
fail_start() {
    local pid="$1" reason="$2"
    kill_broker "$pid"
    echo "kafka.sh: $reason; last lines of $log_file:" >&2
    tail -n 40 "$log_file" >&2 || true
    exit 1
}

cmd_start() {
    command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jre-headless)"
    lock_data
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        echo "kafka already running (pid $pid) on $(bootstrap)"
        return 0
    fi
    rm -f "$pid_file"
    port_open "$port" && die "127.0.0.1:$port is already in use by another process"
    port_open "$ctrl_port" && die "127.0.0.1:$ctrl_port is already in use by another process"
    fetch_jars
    write_config
    format_storage
    # Keep the previous run's log for post-mortems; the readiness check below
    # must only see this run's lines.
    if [[ -f "$log_file" ]]; then mv -f "$log_file" "$log_file.1"; fi
    # All stdio is redirected (and the lock fd closed) so that a caller
    # capturing this script's output, or a later stop, is not held up by the
    # long-lived broker.
    nohup java -Xmx512m -Xms256m -Djava.awt.headless=true \
        "$log4j_opt$server_log4j" \
        -cp "$libs/*" kafka.Kafka "$props" \
        </dev/null >"$log_file" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$pid_file"

    local deadline=$((SECONDS + start_timeout)) left
    while ((SECONDS < deadline)); do
        kill -0 "$pid" 2>/dev/null || fail_start "$pid" "broker exited during startup"
        if grep -q 'Kafka Server started' "$log_file" && port_open "$port"; then
            left=$((deadline - SECONDS))
            ((left > 5)) || left=5
            if metadata_ok "$left"; then
                echo "kafka $version running (pid $pid) on $(bootstrap)"
                return 0
            fi
        fi
        sleep 0.5
    done
    fail_start "$pid" "broker not ready after ${start_timeout}s"
}

cmd_stop() {
    lock_data
    local pid
    pid="$(running_pid)"
    if [[ -z "$pid" ]]; then
        rm -f "$pid_file"
        echo "kafka not running"
        return 0
    fi
    kill_broker "$pid"
    echo "kafka stopped (pid $pid)"
}

cmd_status() {
    local pid
    pid="$(running_pid)"
    if [[ -n "$pid" ]]; then
        echo "kafka running pid=$pid bootstrap=$(bootstrap) data=$data"
        return 0
    fi
    echo "kafka not running"
    return 1
}

cmd_create_topic() {
    local name="${1:-}" partitions="${2:-3}"
    [[ -n "$name" ]] || die "usage: $0 create-topic NAME [PARTITIONS]"
    [[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer"
    [[ -n "$(running_pid)" ]] || die "kafka is not running (run: $0 start)"
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap)" \
        --create --if-not-exists --topic "$name" \
        --partitions "$partitions" --replication-factor 1
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
restart)
    cmd_stop
    cmd_start
    ;;
status) cmd_status ;;
bootstrap) bootstrap ;;
create-topic)
    shift
    cmd_create_topic "$@"
    ;;
*)
    echo "usage: $0 start|stop|restart|status|bootstrap|create-topic NAME [PARTITIONS]" >&2
    exit 2
    ;;
esac
