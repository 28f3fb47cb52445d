#!/usr/bin/env bash
# Sionna RT's CPU backend (Dr.Jit) needs LLVM >= 16; Debian 12 ships 15, which aborts with
# "Cannot select ... fmaximum". Install libllvm19 when it is missing (as root, or with sudo).
set -euo pipefail
LIB=/usr/lib/x86_64-linux-gnu/libLLVM-19.so
[ -e "$LIB" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"
if ! command -v apt-get >/dev/null; then
  echo "install_llvm: no apt-get; install LLVM 19 and set DRJIT_LIBLLVM_PATH (ray tracing only)" >&2
  exit 0
fi
$SUDO apt-get install -y -q libllvm19 >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null 2>&1 && \
  $SUDO apt-get install -y -q libllvm19 >/dev/null; } || \
  echo "install_llvm: could not install libllvm19; ray-traced worlds will be unavailable" >&2
