#!/usr/bin/env bash
# Renders the Kustomize base (deploy/kubernetes/base) and the ha overlay
# (deploy/kubernetes/ha) with kubectl's built-in kustomize, validates every object
# of each render strictly (unknown fields are errors) against the schemas of one
# Kubernetes version, fails if an object a render must hold is missing from it, and
# checks that every $(VAR) in a container's env, command and args is defined above
# its use (Kubernetes leaves any other as written). No cluster is needed or contacted.
#
#   scripts/check-kubernetes.sh          both; renders in target/kubernetes-{base,ha}-rendered.yaml
#   scripts/check-kubernetes.sh base     one of them
#
# Needs kubectl and kubernetes-validate on PATH (.github/requirements-lint.txt), and
# python3 with PyYAML (yamllint's dependency) for the $(VAR) check.
# KUBERNETES_VERSION (default: the one in .github/workflows/ci.yml) picks the schemas.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${KUBERNETES_VERSION:-$(sed -n 's/^  KUBERNETES_VERSION: *"\{0,1\}\([0-9.]*\)"\{0,1\}$/\1/p' .github/workflows/ci.yml)}
[ -n "$version" ] || { echo "check-kubernetes: no KUBERNETES_VERSION" >&2; exit 2; }

# What each render must hold, as KIND/NAME (the ConfigMap's name carries a hash
# of its contents: NAME is its prefix).
base_expected=(Namespace/page-tracker Deployment/web Service/web PodDisruptionBudget/web
               HorizontalPodAutoscaler/web Ingress/web StatefulSet/redis Service/redis
               ConfigMap/redis-scripts- NetworkPolicy/default-deny NetworkPolicy/web NetworkPolicy/redis)
ha_expected=("${base_expected[@]}" StatefulSet/redis-sentinel Service/redis-sentinel
             PodDisruptionBudget/redis PodDisruptionBudget/redis-sentinel NetworkPolicy/redis-sentinel)

overlays=("$@")
[ "${#overlays[@]}" -gt 0 ] || overlays=(base ha)

mkdir -p target
kubectl version --client
status=0
for overlay in "${overlays[@]}"; do
    case $overlay in
        base) expected=("${base_expected[@]}") ;;
        ha) expected=("${ha_expected[@]}") ;;
        *) echo "check-kubernetes: no overlay named $overlay (base or ha)" >&2; exit 2 ;;
    esac
    dir=deploy/kubernetes/$overlay
    rendered=target/kubernetes-$overlay-rendered.yaml
    if ! kubectl kustomize "$dir" >"$rendered"; then
        echo "check-kubernetes: $dir does not render" >&2
        status=1
        continue
    fi
    echo "check-kubernetes: $dir rendered to $rendered ($(grep -c '^kind:' "$rendered") objects)"

    # KIND/NAME of every rendered object, one a line.
    objects=$(python3 -c '
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc:
        print(doc["kind"] + "/" + doc["metadata"]["name"])' "$rendered")
    missing=()
    for object in "${expected[@]}"; do
        grep -q "^$object" <<<"$objects" || missing+=("$object")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "check-kubernetes: the $overlay render has no ${missing[*]}" >&2
        status=1
    fi

    echo "check-kubernetes: $overlay: kubernetes-validate --strict against Kubernetes $version"
    kubernetes-validate --strict --kubernetes-version "$version" "$rendered" || status=1
    python3 scripts/kubernetes-pod.py check-env "$rendered" || status=1
done
[ "$status" -eq 0 ] && echo "check-kubernetes: ${overlays[*]}: every object valid for Kubernetes $version"
exit "$status"
