# syntax=docker/dockerfile:1
#
# replug container image.
#
# Platforms: linux/amd64, linux/arm64, linux/arm/v7. The `usb` package (v3) ships prebuilt glibc binaries for
# exactly these (x64-gnu, arm64-gnu, arm-gnueabihf) and classic-level ships prebuilds for them too, so nothing
# is compiled and the base stays glibc (Debian bookworm): no musl/Alpine, no armv6 (Pi Zero/1).
#
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t replug:local .
#
# Running it (details and the reasons in docs/deploy.md):
#   docker run -d --name replug \
#     -v /dev/bus/usb:/dev/bus/usb --device-cgroup-rule='c 189:* rmw' \
#     --group-add "$(stat -c %g /dev/bus/usb/001/001)" \
#     -e REPLUG_RUNTIME_LABEL=container -e REPLUG_TARGETS=1a86:7523 replug:local
# Bind-mount the /dev/bus/usb directory, never `--device /dev/bus/usb/BBB/DDD`: that snapshots one node, and a
# replugged device gets a new address (moby/moby#35359). The cgroup rule lets the container open USB nodes
# (char major 189) created after it started.

# Overridable so a locally built Node base can stand in where no registry is reachable (docs/deploy.md).
ARG NODE_IMAGE=node:22-bookworm-slim
# BuildKit sets BUILDPLATFORM itself; declared here so the legacy builder (no registry for BuildKit's
# `syntax` frontend) accepts it as --build-arg BUILDPLATFORM=linux/amd64 (`npm run test:docker` does).
ARG BUILDPLATFORM

# ---- build: compile TypeScript. Runs on the build host's platform: tsc output is platform-independent, and
# emulating tsc under QEMU for arm/v7 is slow. --ignore-scripts: `prepare` would build before the sources
# are copied, and no dependency needs an install script (all native code is prebuilt).
FROM --platform=$BUILDPLATFORM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The payload schemas: the build generates the first-error validators from them, and the agent and watch
# load them at run time (the journal check at start, strangers' payloads): without them validation throws.
COPY docs/schemas ./docs/schemas
# The published bin's code-split bundle (dist/app), which `npm run build` makes after tsc with
# scripts/bundle.mjs and the modules beside it (scripts/lib).
COPY scripts ./scripts
RUN npm run build

# ---- deps: production dependencies for the TARGET platform. npm picks the `usb` optional binary package
# (@node-usb/usb-linux-*) by the platform it runs on, so this stage must not run on $BUILDPLATFORM.
# --omit=dev prunes to production deps; --ignore-scripts skips `prepare` (tsc is a dev dependency).
FROM ${NODE_IMAGE} AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime: node + production node_modules + compiled JS. No compiler, python or make: nothing is built here.
FROM ${NODE_IMAGE} AS runtime

# Re-declared: an ARG from before the first FROM is not visible inside a stage (for the base.name label).
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="replug" \
      org.opencontainers.image.description="Edge agent that keeps sessions to USB devices alive across unplug/replug, natively and in containers, and reports it all over MQTT" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"

# A fixed, non-root uid/gid (10001) that matches the Kubernetes manifest and the compose file. Supplementary
# group plugdev (gid 46 in Debian, Raspberry Pi OS and this base image): the host's udev rule gives USB nodes
# GROUP="plugdev" MODE="0660" (deploy/udev/99-replug.rules). Only the numeric gid counts across the
# container boundary, so where the host's gid differs, add it at run time: --group-add <gid> / group_add.
# Root alternative (no udev rule): --user 0; the cgroup rule is still needed.
RUN groupadd --system --gid 10001 replug \
 && useradd --system --uid 10001 --gid replug --groups plugdev --home-dir /var/lib/replug \
      --shell /usr/sbin/nologin replug \
 && install -d -o replug -g replug -m 0750 /var/lib/replug

WORKDIR /opt/replug
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY docs/schemas ./docs/schemas
COPY package.json ./
COPY deploy/docker/healthcheck.mjs ./healthcheck.mjs
RUN ln -s /opt/replug/dist/src/bin/replug.js /usr/local/bin/replug \
 && chmod 0755 /opt/replug/dist/src/bin/replug.js

ENV NODE_ENV=production \
    REPLUG_STATE_DIR=/var/lib/replug \
    REPLUG_RUNTIME_LABEL=container

# The implicit form (no `:group`): Docker and runc add the supplementary groups from /etc/group (plugdev)
# only when the group is not given; `USER replug:replug` ran without plugdev and could not open a node the
# udev rule gives to plugdev (found by `npm run test:docker`, issue 16).
USER replug
# The embedded broker (agent without --mqtt) and `replug broker` listen here. Inside a container the agent's
# embedded broker must bind 0.0.0.0 (REPLUG_BROKER_HOST) to be reachable from outside.
EXPOSE 1883

# Liveness, not a diagnosis (that is `replug doctor`): the replug process runs and, when it serves a broker,
# the port accepts connections; a fresh <state-dir>/health.json heartbeat counts as healthy when present.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/opt/replug/healthcheck.mjs"]

ENTRYPOINT ["replug"]
CMD ["agent"]
