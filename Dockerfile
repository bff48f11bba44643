# The sealer's image, built once (`docker compose build`) instead of each container running `npm ci` into a
# shared working copy. Two stages: `build` has the dev dependencies and compiles; `runtime` has only the
# production dependencies, the compiled dist/, the sample job definitions and the setup script.
# poppler, qpdf and openssl are for the tests, not the worker, and are not installed.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# A small young generation for the main thread (see WORKER_NODE_FLAGS in src/queue/worker-defaults.ts).
ENV NODE_OPTIONS=--max-semi-space-size=2
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# Only the service's code: the tests compiled in the build stage stay there.
COPY --from=build /app/dist/src ./dist/src
COPY jobs ./jobs
COPY docker/setup.sh ./docker/setup.sh
# The job definitions' relative paths (../var/...) resolve here. Named volumes mounted on these folders
# start as copies of them, owned by `node`, so the unprivileged user can write the factors vault.
RUN mkdir -p var/inbox var/outbox var/factors var/sandbox var/secrets && chown -R node:node var
USER node
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["--help"]
