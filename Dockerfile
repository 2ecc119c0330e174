# The rotator's container image: `rotator serve` by default, `rotator run-once` for a CronJob.
#
# Two stages: the build stage makes a virtualenv and installs the project into it pinned by
# constraints.txt (the same pins the tests ran with); the final stage holds only that venv on
# the same base image, so the venv's python symlink points at the same interpreter. No secret is
# ever part of the image: the API key arrives at run time (ROTATOR_API_KEY_FILE, a mounted Secret).
#
#   docker build -t key-rotator .
#   docker run --rm --env-file config/rotator.env.example key-rotator check-config

FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/rotator
ENV PATH=/opt/rotator/bin:$PATH

WORKDIR /src
# .dockerignore lets only pyproject.toml, constraints.txt, README.md and rotator/ through.
COPY . .
RUN pip install --no-cache-dir -c constraints.txt . \
    && rotator --help >/dev/null


FROM python:3.11-slim

LABEL org.opencontainers.image.title="key-rotator" \
      org.opencontainers.image.description="Rotates ProjectManager.com API keys before they expire" \
      org.opencontainers.image.licenses="Apache-2.0"

# Unbuffered: log lines reach the collector as they happen. No bytecode writes: the root file
# system is read-only in the pod (the build stage compiled what pip installed).
ENV PATH=/opt/rotator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY --from=build /opt/rotator /opt/rotator

# The working directory is the file sink's default parent (ROTATOR_SINK_FILE_DIR=./secrets), so
# a plain `docker run` can write; Kubernetes mounts a PersistentVolumeClaim there instead.
RUN mkdir -p /var/lib/rotator && chown 10001:10001 /var/lib/rotator && chmod 0700 /var/lib/rotator
WORKDIR /var/lib/rotator

# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry.
USER 10001:10001

# /healthz, /readyz and /metrics of `rotator serve` (ROTATOR_HTTP_PORT).
EXPOSE 8080

ENTRYPOINT ["rotator"]
CMD ["serve"]
