# Shared settings for the tools/ scripts (sourced, not run).
set -euo pipefail

RVMX_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Everything we download or build outside the checkout lives here.
RVMX_CACHE=${RVMX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rvmx}
RUST_VERSION=1.85.0
BINDGEN_VERSION=0.69.5
BINDGEN_ROOT=$RVMX_CACHE/bindgen-$BINDGEN_VERSION
KSRC_TARBALL=/usr/src/linux-source-6.12.tar.xz
JOBS=${JOBS:-$(nproc)}

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi

# Put the pinned toolchain and bindgen first so the kernel and the module
# are built by the same rustc (their .rmeta files must match).
rvmx_path() {
	local tc
	tc=$(rustup +"$RUST_VERSION" which rustc 2>/dev/null) || return 0
	export PATH="$(dirname "$tc"):$BINDGEN_ROOT/bin:$PATH"
}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Prints seconds since $1 (an epoch value from `date +%s`).
since() { echo $(( $(date +%s) - $1 )); }
