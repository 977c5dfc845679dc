"""Apache Kafka in KRaft combined mode, its jars fetched from Maven Central with mvn."""

from __future__ import annotations

import base64
import os
import re
import shutil
import ssl
import uuid
from pathlib import Path
from typing import Any

from tools.infra.ports import HOST, wait_for_kafka
from tools.infra.procs import kill_now, log_tail, pid_alive, run_logged, spawn_detached
from tools.infra.state import InfraError, ProcessRecord, locked, write_record
from tools.infra.tls import ensure_certificates

KAFKA_VERSION = "4.1.1"
# Kafka 4 logs through SLF4J 2 to Log4j 2; kafka_2.13's pom names neither binding nor SLF4J 2.
SLF4J_VERSION = "2.0.17"
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
COMPONENT = "kafka"
START_TIMEOUT = 90.0
STOP_GRACE = 30.0
FETCH_TIMEOUT = 1800.0
# One node on a small machine: the client compiler alone and the serial collector. Measured on the
# 2-core machine beside an identical broker with the JVM's defaults plus G1 (docs/benchmark.md):
# C2's compilations and G1's concurrent threads were a third of the broker's CPU at 50 messages/s
# and more than half in its first minute, and the single collector's pauses on this heap are short.
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx768m",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    # Kafka's own hook logs the whole shutdown; Log4j's hook would close the log before that.
    "-Dlog4j2.shutdownHookEnabled=false",
)
_COMPLETE = ".complete"

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>careroute</groupId>
  <artifactId>kafka-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-api</artifactId>
      <version>{slf4j}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j2-impl</artifactId>
      <version>{log4j}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def cache_dir() -> Path:
    """Return the cache root: $CAREROUTE_CACHE_DIR, else ~/.cache/careroute."""
    env = os.environ.get("CAREROUTE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "careroute"


def libs_dir() -> Path:
    """Return the folder holding the broker's jars."""
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def java() -> str:
    """Return the java executable, or raise InfraError saying what to install."""
    exe = shutil.which("java")
    if exe is None:
        raise InfraError(
            "KAFKA_BROKER=apache needs Java 17+ (`java` on PATH) and Maven (`mvn`); "
            "install them (apt-get install openjdk-17-jre-headless maven) or use KAFKA_BROKER=tansu"
        )
    return exe


def ensure_jars() -> Path:
    """Fetch Kafka's runtime jars with mvn into the cache unless a complete fetch is there."""
    libs = libs_dir()
    if (libs / _COMPLETE).is_file():
        return libs
    home = libs.parent
    home.mkdir(parents=True, exist_ok=True)
    with locked(home / ".lock"):
        if (libs / _COMPLETE).is_file():
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise InfraError(
                f"KAFKA_BROKER=apache needs Maven (`mvn` on PATH) to fetch Kafka {KAFKA_VERSION} "
                f"into {libs} once; install it (apt-get install maven) or use KAFKA_BROKER=tansu"
            )
        pom = home / "pom.xml"
        pom.write_text(
            _POM.format(kafka=KAFKA_VERSION, slf4j=SLF4J_VERSION, log4j=LOG4J_VERSION),
            encoding="utf-8",
        )
        # Fetch into a side folder and rename, so an interrupted fetch never looks complete.
        staging = home / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        log = home / "fetch.log"
        argv = [
            mvn,
            "-B",
            "-q",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        log.unlink(missing_ok=True)
        code = run_logged(argv, log, cwd=home, timeout=FETCH_TIMEOUT)
        jars = sorted(p.name for p in staging.glob("*.jar")) if staging.is_dir() else []
        if code != 0 or f"kafka_2.13-{KAFKA_VERSION}.jar" not in jars:
            raise InfraError(
                f"mvn could not fetch Kafka {KAFKA_VERSION} (exit {code}; is Maven Central "
                f"reachable?); log {log}:\n{log_tail(log)}"
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        (libs / _COMPLETE).write_text("\n".join(jars) + "\n", encoding="utf-8")
    return libs


def _cluster_id() -> str:
    while True:
        # Kafka's own random ids never start with '-', which the CLI would take for a flag.
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not value.startswith("-"):
            return value


# SCRAM-SHA-512 is what the services' default KAFKA_SASL_MECHANISM speaks.
MECHANISM = "SCRAM-SHA-512"
_PASSWORD = re.compile(r"^[A-Za-z0-9_.~-]{16,}$")


def check_login(username: str, password: str) -> None:
    """Refuse an administrator login the format tool or the JAAS line could misread."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", username):
        raise InfraError(
            f"the Kafka administrator name {username!r} must be letters, digits, '.', '_' or '-'"
        )
    if not _PASSWORD.fullmatch(password):
        raise InfraError(
            "the Kafka administrator password (KAFKA_SASL_PASSWORD) must be at least 16 letters, "
            "digits, '-', '_', '.' or '~'"
        )


def tls_files(kafka_dir: Path) -> tuple[Path, Path]:
    """The CA certificate clients trust and the broker's key and chain, made once in kafka_dir/tls."""
    return ensure_certificates(kafka_dir.resolve() / "tls", HOST)


def sasl_options(login: tuple[str, str], cafile: Path | None = None) -> dict[str, Any]:
    """aiokafka's keyword arguments that log in as `login` on the secured listener (TLS with `cafile`)."""
    options: dict[str, Any] = {
        "security_protocol": "SASL_SSL" if cafile is not None else "SASL_PLAINTEXT",
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": login[0],
        "sasl_plain_password": login[1],
    }
    if cafile is not None:
        options["ssl_context"] = ssl.create_default_context(cafile=str(cafile))
    return options


def _secured_properties(port: int, login: tuple[str, str], tls: tuple[Path, Path] | None) -> dict[str, str]:
    username, password = login
    protocol = "SASL_SSL" if tls is not None else "SASL_PLAINTEXT"
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{username}" password="{password}";'
    )
    keystore = {}
    if tls is not None:
        keystore = {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(tls[1]),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tls[0]),
        }
    return {
        "listeners": f"{protocol}://{HOST}:{port},CONTROLLER://{HOST}:{port + 1}",
        "advertised.listeners": f"{protocol}://{HOST}:{port}",
        "listener.security.protocol.map": f"{protocol}:{protocol},CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": protocol,
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.{protocol.lower()}.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        **keystore,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        # The broker reaches its own controller over the unauthenticated CONTROLLER listener, where it
        # is ANONYMOUS; that listener stays on loopback and serves only the quorum (README: Security).
        "super.users": f"User:{username};User:ANONYMOUS",
    }


def server_properties(
    port: int,
    data_dir: Path,
    login: tuple[str, str] | None = None,
    tls: tuple[Path, Path] | None = None,
) -> str:
    """Return server.properties for a single KRaft node on port (controller on port + 1).

    With `login` (administrator name, password) the client listener is SASL_PLAINTEXT with
    SCRAM-SHA-512 and the StandardAuthorizer denies whatever no ACL allows; with `tls` as well
    (CA file, broker key and chain) it is SASL_SSL.
    """
    controller = port + 1
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{controller}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "1000",
        "auto.create.topics.enable": "false",
        # The controller writes a no-op record to its metadata log this often when nothing else
        # happens (500 ms by default), each one a log append and flush on a node that is idle.
        "metadata.max.idle.interval.ms": "5000",
    }
    if login is not None:
        settings |= _secured_properties(port, login, tls)
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _java_cmd(libs: Path, log4j: Path, log_dir: Path, main: str, *args: str) -> list[str]:
    return [
        java(),
        *JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={log_dir}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def start(
    kafka_dir: Path, port: int, login: tuple[str, str] | None = None, tls: tuple[Path, Path] | None = None
) -> ProcessRecord:
    """Fetch the jars if needed, format storage once, start the broker and wait until it answers.

    With `login` the broker is secured (server_properties); the administrator's SCRAM credential
    is written when the storage is formatted, in its own data folder, so a secured and an
    unsecured broker of one run folder never share storage.
    """
    java()
    if login is not None:
        check_login(*login)
    if tls is not None and login is None:
        raise InfraError("a TLS listener (SASL_SSL) needs an administrator login")
    protocol = "PLAINTEXT" if login is None else ("SASL_SSL" if tls is not None else "SASL_PLAINTEXT")
    libs = ensure_jars()
    kafka_dir = kafka_dir.resolve()
    data_dir = kafka_dir / ("data-secured" if login is not None else "data")
    log_dir = kafka_dir / "log"
    for folder in (data_dir, log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    props = kafka_dir / "server.properties"
    # The file holds the administrator's password once secured: readable by this user only.
    props.touch(mode=0o600)
    props.chmod(0o600)
    props.write_text(server_properties(port, data_dir, login, tls), encoding="utf-8")
    log4j = kafka_dir / "log4j2.properties"
    log4j.write_text(_LOG4J2, encoding="utf-8")
    log = log_dir / "kafka.log"

    if not (data_dir / "meta.properties").is_file():
        format_log = log_dir / "format.log"
        argv = _java_cmd(
            libs,
            log4j,
            log_dir,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            _cluster_id(),
            "-c",
            str(props),
        )
        if login is not None:
            argv += ["--add-scram", f"{MECHANISM}=[name={login[0]},password={login[1]}]"]
        code = run_logged(argv, format_log, cwd=kafka_dir, timeout=120)
        if code != 0:
            raise InfraError(
                f"formatting Kafka storage in {data_dir} failed (exit {code}); "
                f"log {format_log}:\n{log_tail(format_log)}"
            )

    argv = _java_cmd(libs, log4j, log_dir, "kafka.Kafka", str(props))
    proc = spawn_detached(argv, log, cwd=kafka_dir)
    rec = ProcessRecord(
        component=COMPONENT,
        pid=proc.pid,
        port=port,
        marker=str(props),
        log=str(log),
        description=f"Apache Kafka {KAFKA_VERSION} on {HOST}:{port} (controller {port + 1})"
        + (f", {protocol} {MECHANISM}, ACLs" if login is not None else ""),
        extra={
            "controller_port": str(port + 1),
            "version": KAFKA_VERSION,
            "libs": str(libs),
            "security_protocol": protocol,
            **({"ssl_cafile": str(tls[0])} if tls is not None else {}),
        },
    )
    write_record(kafka_dir / "process.json", rec)
    options = sasl_options(login, tls[0] if tls else None) if login is not None else None
    outcome, error = wait_for_kafka(
        port, timeout=START_TIMEOUT, alive=lambda: pid_alive(proc.pid), options=options
    )
    if outcome != "ok":
        kill_now(proc.pid)
        what = "exited" if outcome == "exited" else f"did not answer within {START_TIMEOUT:.0f} s"
        raise InfraError(
            f"Apache Kafka on port {port} {what} (last error: {error}); log {log}:\n{log_tail(log)}"
        )
    return rec
