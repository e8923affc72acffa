#!/usr/bin/env bash
# Install everything rvmx needs on a Debian 12 machine. Idempotent: a second
# run checks and changes nothing.
. "$(dirname "$0")/lib.sh"
t0=$(date +%s)

PKGS=(build-essential clang lld llvm libclang-dev flex bison bc libelf-dev
      libssl-dev cpio kmod busybox-static genisoimage isolinux syslinux-common
      bochs bochsbios vgabios linux-source-6.12 xz-utils curl ca-certificates
      python3 rsync util-linux lz4)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "apt-get install ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v rustup >/dev/null; then
	if [ -x "$HOME/.cargo/bin/rustup" ]; then
		export PATH="$HOME/.cargo/bin:$PATH"
	else
		say "installing rustup"
		curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain none >/dev/null
		export PATH="$HOME/.cargo/bin:$PATH"
	fi
fi
if ! rustup +"$RUST_VERSION" component list --installed 2>/dev/null | grep -q '^rust-src'; then
	say "rustup toolchain $RUST_VERSION + rust-src"
	rustup toolchain install "$RUST_VERSION" --profile minimal -c rust-src >/dev/null
fi

if ! "$BINDGEN_ROOT/bin/bindgen" --version 2>/dev/null | grep -q "$BINDGEN_VERSION"; then
	say "cargo install bindgen-cli $BINDGEN_VERSION (takes a minute or two)"
	cargo +"$RUST_VERSION" install --locked -q bindgen-cli --version "$BINDGEN_VERSION" --root "$BINDGEN_ROOT"
fi

say "setup done in $(since "$t0") s"
