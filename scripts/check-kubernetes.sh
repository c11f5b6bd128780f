#!/usr/bin/env bash
# Renders deploy/kubernetes/base with kubectl's built-in kustomize and validates
# every object strictly (unknown fields are errors) against the schemas of one
# Kubernetes version; fails if an expected kind is missing from the render.
# No cluster is needed or contacted.
#
#   scripts/check-kubernetes.sh [KUSTOMIZATION_DIR]
#
# Needs kubectl and kubernetes-validate on PATH (.github/requirements-lint.txt).
# KUBERNETES_VERSION (default: the one in .github/workflows/ci.yml) picks the schemas.
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${1:-deploy/kubernetes/base}
version=${KUBERNETES_VERSION:-$(sed -n 's/^  KUBERNETES_VERSION: *"\{0,1\}\([0-9.]*\)"\{0,1\}$/\1/p' .github/workflows/ci.yml)}
[ -n "$version" ] || { echo "check-kubernetes: no KUBERNETES_VERSION" >&2; exit 2; }
expected=(Namespace Deployment Service PodDisruptionBudget HorizontalPodAutoscaler
          NetworkPolicy Ingress StatefulSet)

mkdir -p target
rendered=target/kubernetes-rendered.yaml
kubectl version --client
kubectl kustomize "$dir" >"$rendered"
echo "check-kubernetes: $dir rendered to $rendered ($(grep -c '^kind:' "$rendered") objects)"

missing=()
for kind in "${expected[@]}"; do
    grep -q "^kind: $kind\$" "$rendered" || missing+=("$kind")
done

status=0
echo "check-kubernetes: kubernetes-validate --strict against Kubernetes $version"
kubernetes-validate --strict --kubernetes-version "$version" "$rendered" || status=1
if [ "${#missing[@]}" -gt 0 ]; then
    echo "check-kubernetes: the render has no ${missing[*]}" >&2
    status=1
fi
[ "$status" -eq 0 ] && echo "check-kubernetes: every object valid for Kubernetes $version"
exit "$status"
