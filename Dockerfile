# The rotator's container image: `rotator serve` by default, `rotator run-once` for a CronJob.
#
# Two stages: the build stage makes a virtualenv and installs the project and the SDKs of the
# sinks (the EXTRAS) into it, pinned by constraints.txt (the same pins the tests ran with); the
# final stage holds only that venv on the same base image, so the venv's python symlink points
# at the same interpreter. No secret is ever part of the image: the API key arrives at run time
# (ROTATOR_API_KEY_FILE, a mounted Secret).
#
# It runs as the numeric user 10001 with a read-only root file system: at run time it writes
# only to /tmp (an emptyDir in Kubernetes) and to the file sink's folder, if that sink is used
# (/var/lib/rotator, a volume). scripts/ci_image.sh builds and runs it that way in CI.
#
#   docker build -t key-rotator .
#   docker build --build-arg EXTRAS= -t key-rotator:file-only .     # the file and exec sinks only
#   docker run --rm --read-only --tmpfs /tmp --env-file config/rotator.env.example key-rotator check-config

FROM python:3.11-slim AS build

# The pip extras to install: one per sink that needs an SDK (the file and exec sinks need none),
# and notify (Apprise, Standard Webhooks): notifications are configured by variables alone.
ARG EXTRAS=kubernetes,vault,aws-secrets-manager,notify

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1

RUN python -m venv /opt/rotator
ENV PATH=/opt/rotator/bin:$PATH

WORKDIR /src
# .dockerignore lets only these through; listing them keeps the build's input explicit.
COPY pyproject.toml constraints.txt README.md ./
COPY rotator/ rotator/
# pip compiles every module to bytecode as it installs (the final stage cannot: its root file
# system is read-only). pip and setuptools are then removed from the venv: nothing installs at
# run time, and they are the largest part of it that the rotator never imports.
RUN pip install --no-cache-dir -c constraints.txt ".[${EXTRAS}]" \
    && rotator --help >/dev/null \
    && pip uninstall --yes pip setuptools


FROM python:3.11-slim

ARG VERSION=0.2.0
ARG REVISION=""
ARG CREATED=""

LABEL org.opencontainers.image.title="key-rotator" \
      org.opencontainers.image.description="Rotates ProjectManager.com API keys before they expire, delivering each replacement where its consumer reads it" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/key-rotator/key-rotator" \
      org.opencontainers.image.documentation="https://github.com/key-rotator/key-rotator/blob/main/docs/operations.md"

# Unbuffered: log lines reach the collector as they happen. No bytecode writes: the root file
# system is read-only (the build stage compiled what pip installed). HOME in /tmp: user 10001
# has no home, and a library that caches under ~ then writes to the one writable scratch place.
ENV PATH=/opt/rotator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONFAULTHANDLER=1 \
    HOME=/tmp

COPY --from=build /opt/rotator /opt/rotator

# The working directory is the file sink's default parent (ROTATOR_SINK_FILE_DIR=./secrets), so
# a plain `docker run` can write; Kubernetes mounts a volume there instead.
RUN mkdir -p /var/lib/rotator \
    && chown 10001:10001 /var/lib/rotator \
    && chmod 0700 /var/lib/rotator
WORKDIR /var/lib/rotator

# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry.
USER 10001:10001

# /healthz, /readyz and /metrics of `rotator serve` (ROTATOR_HTTP_PORT).
EXPOSE 8080

ENTRYPOINT ["rotator"]
CMD ["serve"]
