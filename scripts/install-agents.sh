#!/usr/bin/env bash
# Install the pinned agent CLIs that the end-to-end tests run, into ./.agents
# (tests put .agents/node_modules/.bin first on PATH). Needs Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE=2.1.332
CODEX=0.169.0
GEMINI_CLI=0.61.0

if ! command -v npm >/dev/null 2>&1; then
  echo "install-agents: npm not found; install Node.js >= 20 first" >&2
  exit 1
fi
mkdir -p .agents
npm install --prefix .agents --no-audit --no-fund --loglevel=error \
  "@anthropic-ai/claude-code@${CLAUDE_CODE}" \
  "@openai/codex@${CODEX}" \
  "@google/gemini-cli@${GEMINI_CLI}"
for bin in claude codex gemini; do
  "./.agents/node_modules/.bin/${bin}" --version >/dev/null
done
echo "install-agents: claude ${CLAUDE_CODE}, codex ${CODEX}, gemini ${GEMINI_CLI} in .agents/"
