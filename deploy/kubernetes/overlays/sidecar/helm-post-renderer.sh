#!/bin/sh
# Helm post-renderer: the chart's rendered manifests (standard input) take the place of
# chart-webservice.yaml, and this overlay's patches put the gate in front of Workhorse.
#   helm upgrade --install gitlab gitlab/gitlab -f values.yaml --post-renderer ./helm-post-renderer.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$here/../../base" "$work/base"
mkdir -p "$work/overlays"
cp -R "$here" "$work/overlays/sidecar"
cat > "$work/overlays/sidecar/chart-webservice.yaml"
kubectl kustomize "$work/overlays/sidecar"
