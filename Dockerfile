# keyway as a sidecar: deploy/ runs the agent in keyway's network namespace, where redirect rules
# send its connections to keyway (no proxy setting); an agent elsewhere sets
# HTTPS_PROXY=http://AGENT:KEY@keyway:8787.
# Build (from the checkout):  docker build -t keyway-proxy:0.1.0 .
# Its home is /app (KEYWAY_HOME), not ~/.keyway: volumes hold certs (with the CA key: keyway only),
# data, logs, and ca-public (ca.pem + bundle.pem, for agents). deploy/ has compose and Kubernetes files.
# Run:    docker run -p 8787:8787 -v keyway-certs:/app/certs -v keyway-data:/app/data -v keyway-logs:/app/logs keyway-proxy:0.1.0
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY scripts/build.mjs scripts/bundle.mjs ./scripts/
# --ignore-scripts: the image already has Node 24, so the pinned node devDependency is not needed.
RUN npm ci --ignore-scripts --no-audit --no-fund && node scripts/build.mjs && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production KEYWAY_HOME=/app KEYWAY_PUBLIC_CA_DIR=/app/ca-public
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config/keyway.example.yaml ./config/keyway.example.yaml
COPY deploy/docker-entrypoint.sh ./docker-entrypoint.sh
# The pod's redirect rules (deploy/transparent), applied by an init container of this same image,
# as root with NET_ADMIN (deploy/kubernetes/deployment.yaml); keyway itself never runs nft.
COPY deploy/transparent ./deploy/transparent
RUN apt-get update && apt-get install -y --no-install-recommends nftables && rm -rf /var/lib/apt/lists/*
# The folders exist in the image, owned by node, so named volumes mounted there start out writable.
RUN mkdir -p certs data logs ca-public && chown -R node:node /app
USER node
VOLUME ["/app/certs", "/app/data", "/app/logs", "/app/ca-public"]
EXPOSE 8787 8788
# Inside a container keyway must listen on all interfaces. Clients from other containers are not
# loopback, so configure at least one agent (config/keyway.yaml or `keyway agents add`).
# keyway start re-executes itself under its runtime settings (heap limits, allocator variables: see
# src/cli/proxy-runtime.ts), so the command is the plain one. The entrypoint runs `keyway init` and
# publishes the public CA first (deploy/docker-entrypoint.sh); other commands pass straight through:
# docker run --rm -v keyway-data:/app/data keyway-proxy:0.1.0 agents list
ENTRYPOINT ["/bin/sh", "/app/docker-entrypoint.sh"]
CMD ["start", "--listen", "0.0.0.0:8787", "--admin-listen", "0.0.0.0:8788"]
