#!/usr/bin/env bash
# Builds the ferrolb container image FROM scratch (Containerfile) with podman:
#  1. the binaries: `cargo build --release --locked` for --target (default: the host's
#     x86_64-unknown-linux-gnu), or the ones in --bin-dir (the tests pass target/debug: the
#     same code without a release build's minutes; a release image always uses release
#     binaries);
#  2. a root filesystem staged in target/image/<arch>/: /etc/passwd and /etc/group with the
#     user ferrolb (65532), and for dynamically linked binaries the loader and the libraries
#     `ldd` lists (the build host's; their Debian package versions are recorded);
#  3. `podman build` with OCI labels: version (Cargo), revision (git), source, rustc.
#
#   scripts/build-image.sh [--target TRIPLE] [--bin-dir DIR] [--tag NAME] [--source URL]
#
# Prints the image tag on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-gnu
bin_dir=""
tag=""
source_url="https://example.invalid/ferrolb"
while [ $# -gt 0 ]; do
    case "$1" in
        --target) target=$2; shift 2 ;;
        --bin-dir) bin_dir=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --source) source_url=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

case "$target" in
    x86_64-*) arch=amd64 ;;
    aarch64-*) arch=arm64 ;;
    *) echo "unsupported target $target (x86_64-* or aarch64-*)" >&2; exit 2 ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then revision="$revision-dirty"; fi
tag=${tag:-ferrolb:$version}

if [ -z "$bin_dir" ]; then
    # The revision is compiled into ferrolb_build_info (telemetry reads FERROLB_REVISION).
    FERROLB_REVISION=$revision cargo build --release --locked --target "$target" \
        -p ferrolb-controller -p ferrolb-speaker >&2
    bin_dir=target/$target/release
fi

stage=target/image/$arch
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/rootfs/etc" "$stage/rootfs/usr/share/doc/ferrolb"
for b in ferrolb-controller ferrolb-speaker; do
    [ -x "$bin_dir/$b" ] || { echo "$bin_dir/$b is missing" >&2; exit 1; }
    cp "$bin_dir/$b" "$stage/bin/$b"
done
printf 'root:x:0:0:root:/:/sbin/nologin\nferrolb:x:65532:65532:ferrolb:/:/sbin/nologin\n' \
    > "$stage/rootfs/etc/passwd"
printf 'root:x:0:\nferrolb:x:65532:\n' > "$stage/rootfs/etc/group"

# Shared libraries and the loader, by the path the binaries ask for (static binaries: none).
libs=$(for b in "$stage"/bin/*; do
    ldd "$b" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'
done | sort -u)
: > "$stage/rootfs/usr/share/doc/ferrolb/runtime-libraries.txt"
for lib in $libs; do
    mkdir -p "$stage/rootfs$(dirname "$lib")"
    cp -L "$lib" "$stage/rootfs$lib"
    # dpkg knows a library by one of its names (usrmerge: /lib or /usr/lib).
    pkg=$( { dpkg -S "$lib" || dpkg -S "$(readlink -f "$lib")" || dpkg -S "*/$(basename "$lib")"; } \
        2>/dev/null | head -1 | cut -d: -f1-2 || true)
    ver=$( [ -n "$pkg" ] && dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo unknown)
    echo "$lib ${pkg:-unknown} $ver" >> "$stage/rootfs/usr/share/doc/ferrolb/runtime-libraries.txt"
done

rustc_version=$(rustc --version 2>/dev/null || echo unknown)
podman build --quiet \
    --platform "linux/$arch" \
    --file Containerfile \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    --build-arg SOURCE="$source_url" \
    --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --build-arg RUSTC="$rustc_version" \
    --tag "$tag" . >&2
echo "$tag"
