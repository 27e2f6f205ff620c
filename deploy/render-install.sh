#!/usr/bin/env bash
# Renders examples/manifests/install.yaml from deploy/overlays/default (kubectl with its
# built-in kustomize; v1.32 / kustomize v5.5 here). tests/tests/deploy.rs fails when the
# committed file differs from this output.
#   bash deploy/render-install.sh            # rewrite the file
#   bash deploy/render-install.sh --stdout   # print it
set -euo pipefail
cd "$(dirname "$0")/.."
render() {
    printf '%s\n' \
        "# ferrolb install manifest: kubectl apply -f install.yaml" \
        "# Rendered from deploy/overlays/default by deploy/render-install.sh; do not edit by hand" \
        "# (the sources, with comments on every security setting, are in deploy/)."
    kubectl kustomize deploy/overlays/default
}
if [ "${1:-}" = --stdout ]; then render; else render > examples/manifests/install.yaml; fi
