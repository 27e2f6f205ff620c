#!/usr/bin/env bash
# Installs (with apt-get, only when missing) the Debian packages that ferrolb's tests and the
# lab use: real BGP peers (gobgpd, bird2, frr), iproute2 for namespaces, arping/ndisc6 as L2
# clients, tcpdump for captures, curl and python3 for the HTTP backends of the lab; etcd-server,
# openssl (the harness's PKI) and xz-utils (to unpack ../shared/k8s/kube-apiserver.xz) for the
# real-API-server tests, and kubectl (kubernetes-client) when none is installed (the deploy
# tests render deploy/ with its kustomize); podman and runc to build and run the container
# image (tests/tests/image.rs), prometheus for promtool (tests/tests/monitoring.rs), iptables
# (iptables/ip6tables drop BFD and forwarded echo packets in the BFD tests); qemu-system-x86,
# busybox-static and cpio for the small VM that runs tests needing a kernel feature the host
# may lack (VRF: tests/vm/prepare.sh builds and caches its image).
# Sourced by scripts/test.sh and examples/lab/run.sh; can also be run directly.
TEST_PACKAGES=(iproute2 iputils-ping gobgpd bird2 frr arping ndisc6 tcpdump curl python3 procps
    etcd-server openssl xz-utils podman runc prometheus iptables qemu-system-x86 busybox-static
    cpio)
command -v kubectl >/dev/null 2>&1 || TEST_PACKAGES+=(kubernetes-client)

install_test_deps() {
    local missing=()
    for p in "${TEST_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "warning: missing packages ${missing[*]} and cannot apt-get install them (need root on Debian)" >&2
        return 0
    fi
    echo "== apt-get install ${missing[*]}"
    # Packages like frr and bird2 would start their system services on install; the tests run
    # their own daemons inside namespaces, so forbid service starts during the install.
    local policy=/usr/sbin/policy-rc.d created=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ "$created" = 1 ] && rm -f "$policy"
    # Stop any service a package started anyway (no systemd here: init scripts).
    for s in frr bird prometheus; do
        [ -x /etc/init.d/$s ] && /etc/init.d/$s stop >/dev/null 2>&1 || true
    done
    return 0
}

# The test VM's image (Debian's kernel + a busybox initramfs), built once and cached; a failure
# here is not fatal: the VM tests build it again themselves, or say why they cannot.
prepare_test_vm() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    bash "$here/../tests/vm/prepare.sh" >/dev/null \
        || echo "warning: tests/vm/prepare.sh failed; VM tests will retry it" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    install_test_deps
    prepare_test_vm
fi
