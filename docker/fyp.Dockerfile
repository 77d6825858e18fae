# syntax=docker/dockerfile:1.7
# The fyp image: the same two Python environments and jars that scripts/install.sh makes, laid out like a
# checkout so that REPO_ROOT-relative paths (.venv-flink, build/jars/flink, flink-conf, jobs) resolve as on a
# workstation. One image runs the Flink JobManager/TaskManager, the job submitter and every `fyp` worker.
#
#   docker compose build            (docker-compose.yml builds it as fyp:local)
#   docker build -f docker/fyp.Dockerfile -t REGISTRY/fyp:VERSION . && docker push REGISTRY/fyp:VERSION
#                                   (the image deploy/kubernetes names: docs/DEPLOY.md "The image")
#
# Build context: the repository root; docker/fyp.Dockerfile.dockerignore keeps local venvs, jars and state out.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------------------------
# Stage 1: Flink connector jars from Maven Central, through the same manifest as scripts/install.sh, and fyp's
# own jars.
# (connectors/maven/kafka is the broker for the no-Docker stack; here the broker is the apache/kafka image.)
FROM maven:3.9-eclipse-temurin-17 AS jars
WORKDIR /src
COPY connectors/maven/ connectors/maven/
RUN --mount=type=cache,target=/root/.m2 \
    mvn -q -B -f connectors/maven/flink/pom.xml dependency:copy-dependencies \
        -DoutputDirectory=/jars/flink -DincludeScope=runtime \
 && ls /jars/flink/*.jar
# Flink's S3 file system, a plugin (its own class loader), through the manifest scripts/install.sh uses: checkpoints,
# savepoints and Kubernetes HA metadata on s3:// (the cluster profile, deploy/kubernetes).
RUN --mount=type=cache,target=/root/.m2 \
    mvn -q -B -f connectors/maven/flink-plugins/pom.xml dependency:copy-dependencies \
        -DoutputDirectory=/plugins/s3-fs-hadoop -DincludeScope=runtime \
 && ls /plugins/s3-fs-hadoop/*.jar

# fyp's own jars, as scripts/install.sh builds them: the aggregate functions and the key-family operators
# (udfs/java/aggregates), the Java decoder with the .avsc files packed in (udfs/java/envelope), and the Redis sink
# (connectors/java/redis-sink). The jobs' SQL and DataStream steps call their classes, so without them no job runs.
COPY udfs/java/ udfs/java/
COPY connectors/java/ connectors/java/
COPY schemas/avro/ schemas/avro/
RUN --mount=type=cache,target=/root/.m2 \
    for module in udfs/java/aggregates udfs/java/envelope connectors/java/redis-sink; do \
      mvn -q -B -f "$module/pom.xml" package -DskipTests || exit 1; \
    done \
 && cp build/jars/flink/fyp-aggregates.jar build/jars/flink/fyp-envelope.jar build/jars/flink/fyp-redis-sink.jar \
       /jars/flink/ \
 && ls /jars/flink/fyp-*.jar

# ---------------------------------------------------------------------------------------------------------
# Stage 2: the runtime.
FROM ${PYTHON_IMAGE} AS runtime

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Java 17 (Flink, the PyFlink gateway), ffmpeg (transcoding), fpcalc (Chromaprint), procps (Flink scripts).
# openjdk's postinst needs the man1 folder that slim images drop. Debian versions float with bookworm.
# hadolint ignore=DL3008
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
        openjdk-17-jre-headless ffmpeg libchromaprint-tools procps \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /opt/java \
 && java -version
ENV JAVA_HOME=/opt/java

# The checkout lives in /opt/fyp; the environments live outside it and are linked in as .venv / .venv-flink.
WORKDIR /opt/fyp

# Dependencies first (a layer that only changes with pyproject.toml), then the project itself, editable, as
# scripts/install.sh does. Two environments: apache-flink pins pyarrow<17, pyiceberg needs pyarrow>=18. Both get
# the `embeddings` extra (torch, sentence-transformers), as install.sh gives them: the video_embeddings job runs the
# item encoder in the TaskManager, and the user-embeddings worker and `fyp train two-tower` import torch.
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; x = p['optional-dependencies']; \
[open(f'/tmp/requirements-{n}.txt', 'w').write('\n'.join(p['dependencies'] + x[n] + x['embeddings']) + '\n') \
 for n in ('tools', 'flink')]"
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install -r /tmp/requirements-tools.txt
RUN python -m venv /opt/venv-flink \
 && /opt/venv-flink/bin/pip install --upgrade pip \
 && /opt/venv-flink/bin/pip install -r /tmp/requirements-flink.txt

COPY . /opt/fyp
RUN /opt/venv/bin/pip install --no-deps -e . \
 && /opt/venv-flink/bin/pip install --no-deps -e . \
 && /opt/venv/bin/pip check \
 && /opt/venv-flink/bin/pip check \
 && ln -sfn /opt/venv /opt/fyp/.venv \
 && ln -sfn /opt/venv-flink /opt/fyp/.venv-flink

# The Flink distribution inside the apache-flink wheel, and a lib folder = its jars + flink-python (in lib/, as
# fyp/stack/flink_cluster.py does: PEMJA's native library loads once per JVM) + the connector jars. On
# Kubernetes, flink-python is also each FlinkDeployment's jarURI (local:///opt/flink-lib/flink-python-2.2.1.jar).
ENV FLINK_HOME=/opt/venv-flink/lib/python3.11/site-packages/pyflink \
    FLINK_LIB_DIR=/opt/flink-lib
COPY --from=jars /jars/flink/ /opt/fyp/build/jars/flink/
COPY --from=jars /plugins/ /opt/venv-flink/lib/python3.11/site-packages/pyflink/plugins/
RUN test -x "$FLINK_HOME/bin/jobmanager.sh" \
 && mkdir -p "$FLINK_LIB_DIR" \
 && ln -s "$FLINK_HOME"/lib/*.jar "$FLINK_HOME"/opt/flink-python-*.jar /opt/fyp/build/jars/flink/*.jar \
        "$FLINK_LIB_DIR"/ \
 && touch /opt/fyp/build/jars/flink/.complete \
 && ls "$FLINK_LIB_DIR"

# Unprivileged runtime user; FYP_HOME (state, logs, the rendered Flink config, checkpoints) is its own.
RUN groupadd --system --gid 10001 fyp \
 && useradd --system --uid 10001 --gid fyp --home-dir /var/lib/fyp --shell /usr/sbin/nologin fyp \
 && mkdir -p /var/lib/fyp/data/flink /var/lib/fyp/logs /var/lib/fyp/run \
 && chown -R fyp:fyp /var/lib/fyp \
 && chmod 0755 /opt/fyp/docker/flink-entrypoint.sh
# Flink's bin/ is on PATH for the Flink Kubernetes Operator: it starts pods with `bash -c kubernetes-*.sh`
# (through /usr/bin/env, deploy/kubernetes/generate.py's kubernetes.entry.path).
ENV FYP_HOME=/var/lib/fyp \
    PATH=/opt/venv/bin:$FLINK_HOME/bin:$PATH
USER 10001:10001

# Flink REST/UI, RPC, blob server, Prometheus reporter; index and upload HTTP ports.
EXPOSE 8081 6123 6124 9249 8090 8000

CMD ["fyp", "--help"]
