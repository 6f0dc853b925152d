# job-token-gate container image.
#
#   docker build -t job-token-gate .
#   docker run --read-only -e GATE_UPSTREAM_URL=http://gitlab-webservice:8181 \
#     -e GATE_SERVICE_TOKEN=glpat-... -p 8181:8181 -p 8182:8182 job-token-gate
#
# The build stage compiles src/ with the dev dependencies; the runtime stage holds Node, the
# production dependencies, dist/, catalog/ and bin/, runs as an unprivileged user and writes
# nothing but the grants file of the memory store (GATE_STATE_FILE) in the volume below.
# test/ship/dockerfile.test.ts performs these steps in a temporary directory (COPY, RUN, ENV,
# USER, EXPOSE, VOLUME, ENTRYPOINT, CMD are read from this file) and probes /-/readiness.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
COPY catalog/ catalog/
COPY bin/ bin/
COPY LICENSE ./
RUN ln -s /app/bin/job-token-gate.mjs /usr/local/bin/job-token-gate \
 && mkdir -p /var/lib/job-token-gate \
 && chown 1000:1000 /var/lib/job-token-gate
# The memory store's grants file goes here (GATE_STATE_FILE=/var/lib/job-token-gate/grants.json);
# with Redis nothing is written at all, so the root filesystem can be mounted read-only.
VOLUME ["/var/lib/job-token-gate"]
# 1000 is the node user of the official image; numeric, so Kubernetes' runAsNonRoot can check it.
USER 1000:1000
# GATE_LISTEN (API) and GATE_HEALTH_LISTEN (/-/liveness, /-/readiness, /metrics) defaults.
EXPOSE 8181 8182
# SIGTERM drains in-flight requests for GATE_DRAIN_TIMEOUT_MS, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["job-token-gate"]
CMD ["serve"]
