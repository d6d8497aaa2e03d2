# voxserve: text-to-speech over HTTP. See docs/deployment.md.
#
#   docker build -t voxserve .                                    # CPU (default)
#   docker build -t voxserve:gpu --build-arg EXTRAS=gpu \
#     --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t voxserve .   # Raspberry Pi 4/5
#
# The base image must provide apt-get, and `python` (3.11+) or apt packages for it.
# linux/arm/v7 (32-bit) does not build: PyPI has no onnxruntime or numpy wheels for it.
ARG BASE_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
# builder: a virtualenv in /opt/venv with voxserve and its dependencies, nothing else.
FROM ${BASE_IMAGE} AS builder
# Extras to install beside voxserve: "gpu" for onnxruntime-gpu and NVML metrics.
ARG EXTRAS=""
# Where pip finds packages: point it at an internal mirror for air-gapped builds.
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# nvidia/cuda images come without Python; python:3.11-slim already has it. Debian package
# versions are the base image's (one pin cannot fit Debian and Ubuntu bases).
# hadolint ignore=DL3008
RUN if ! command -v python >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 \
      && apt-get clean \
      && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python -m venv /opt/venv
WORKDIR /src
# Dependencies first, from pyproject.toml alone, so a source change reuses this layer.
COPY pyproject.toml README.md ./
RUN mkdir -p src/voxserve \
    && touch src/voxserve/__init__.py \
    && /opt/venv/bin/pip install ".${EXTRAS:+[$EXTRAS]}" \
    && /opt/venv/bin/pip uninstall -y voxserve
COPY src ./src
# onnxruntime-gpu and onnxruntime install the same module; with the gpu extra, keep only
# the GPU build (it runs on CPU too).
RUN /opt/venv/bin/pip install --no-deps . \
    && if [[ "$EXTRAS" == *gpu* ]]; then \
         /opt/venv/bin/pip uninstall -y onnxruntime \
         && /opt/venv/bin/pip install --force-reinstall --no-deps onnxruntime-gpu; \
       fi \
    && /opt/venv/bin/pip uninstall -y pip setuptools

# ---------------------------------------------------------------------------------------
# runtime: the virtualenv, espeak-ng, a non-root user. No compilers, no pip cache.
FROM ${BASE_IMAGE} AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# espeak-ng: Piper's phonemes come from its data, and it offers ~100 more languages.
# $extra is unquoted on purpose: empty, or two package names.
# hadolint ignore=DL3008,SC2086
RUN if ! command -v python >/dev/null; then extra="python3 python-is-python3"; fi \
    && apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng ${extra:-} \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/cache/voxserve \
       --no-create-home --shell /usr/sbin/nologin voxserve \
    && mkdir -p /var/cache/voxserve /models \
    && chown 10001:10001 /var/cache/voxserve
COPY --from=builder /opt/venv /opt/venv

# The only writable path the service needs: the disk cache (VOXSERVE_CACHE=disk) and
# $HOME. Everything else may be a read-only root filesystem (`docker run --read-only`).
VOLUME ["/var/cache/voxserve"]
# VOXSERVE_API_KEY_FILE is a path, not a secret: the key itself is mounted there.
# No VOXSERVE_PORT: the API port is 5002 unless a serverless platform sets $PORT.
# hadolint ignore=DL3064
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/cache/voxserve \
    VOXSERVE_HOST=0.0.0.0 \
    VOXSERVE_METRICS_PORT=8000 \
    VOXSERVE_CACHE_DIR=/var/cache/voxserve \
    VOXSERVE_API_KEY_FILE=/run/secrets/tts_api_key
WORKDIR /var/cache/voxserve
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 5002 8000
# /readyz is 503 until the voices are loaded and warmed up, and again while draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % (os.environ.get('VOXSERVE_PORT') or os.environ.get('PORT') or '5002'), timeout=2)"]
# SIGTERM: readiness turns 503, in-flight requests get 30 s, then the process exits.
# Give `docker stop` at least that: `docker stop -t 35` (compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["voxserve"]
CMD ["serve"]
