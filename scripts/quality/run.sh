#!/usr/bin/env bash
# `make quality`: the real-model suite. Builds llama-server and the models once (cached
# outside the repo, see build_llama_server.sh / prepare_models.sh), then runs
# `pytest -m quality`, which starts the servers on loopback ports and stops them after.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY="${1:-.venv/bin/python}"
here=scripts/quality
LLAMA_SERVER="$("$here/build_llama_server.sh")"
models="$("$here/prepare_models.sh")"
QUALITY_CHAT_MODEL="$(sed -n 's/^CHAT_MODEL=//p' <<<"$models")"
QUALITY_EMBED_MODEL="$(sed -n 's/^EMBED_MODEL=//p' <<<"$models")"
export LLAMA_SERVER QUALITY_CHAT_MODEL QUALITY_EMBED_MODEL
echo "llama-server: $LLAMA_SERVER"
exec "$PY" -m pytest -m quality tests/quality -p no:cacheprovider ${PYTEST_ARGS:-}
