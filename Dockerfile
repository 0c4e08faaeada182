# keyway as a sidecar: agents in other containers set HTTPS_PROXY=http://AGENT:KEY@keyway:8787.
# Build:  docker build -t keyway .
# Its home is /app (KEYWAY_HOME), not ~/.keyway: the volumes below hold certs, data and logs.
# Run:    docker run -p 8787:8787 -v keyway-certs:/app/certs -v keyway-data:/app/data -v keyway-logs:/app/logs keyway
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# --ignore-scripts: the image already has Node 24, so the pinned node devDependency is not needed.
RUN npm ci --ignore-scripts --no-audit --no-fund && npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production KEYWAY_HOME=/app
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config/keyway.example.yaml ./config/keyway.example.yaml
RUN mkdir -p certs data logs && chown -R node:node /app
USER node
VOLUME ["/app/certs", "/app/data", "/app/logs"]
EXPOSE 8787 8788
# Inside a container keyway must listen on all interfaces. Clients from other containers are not
# loopback, so configure at least one agent (config/keyway.yaml or `keyway agents add`).
# keyway start re-executes itself under its runtime settings (heap limits, allocator variables: see
# src/cli/proxy-runtime.ts), so the command is the plain one.
CMD ["node", "dist/cli/main.js", "start", "--listen", "0.0.0.0:8787", "--admin-listen", "0.0.0.0:8788"]
