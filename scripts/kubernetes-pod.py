#!/usr/bin/env python3
"""Reads rendered Kubernetes manifests (`kubectl kustomize` output) for the
checks that need no cluster; PyYAML is the only dependency (yamllint brings it).

  kubernetes-pod.py check-env RENDERED
      every $(VAR) in a container's env, command and args names a variable
      defined above it (Kubernetes expands only those, and leaves the rest as
      written: a password that never arrives)
  kubernetes-pod.py secrets RENDERED
      a JSON object of made-up, URL-safe values for every Secret key the pods
      read: {"secret": {"key": "value"}}
  kubernetes-pod.py docker-args RENDERED STATEFULSET ORDINAL SECRETS WORKDIR NETWORK PREFIX LABEL
      the arguments of `docker run` (NUL-separated) running pod ORDINAL of
      STATEFULSET's first container as rendered: image, command and args,
      env (Secret keys from SECRETS, the downward API's name and namespace,
      $(VAR) expanded as the kubelet does), ConfigMaps as read-only files at
      their mountPath, emptyDirs as tmpfs, each volume claim as a Docker volume,
      the security context (user, group, fsGroup, read-only root, dropped
      capabilities, no privilege escalation), limits, DNS options, and the
      readiness probe as the health check. The pod is on NETWORK with its DNS
      name <pod>.<serviceName>.<namespace>.svc.cluster.local as alias; the
      container, its env file and its ConfigMap files go under PREFIX and WORKDIR.
"""
import json
import os
import re
import secrets
import shlex
import sys

import yaml

REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def expand(text, defined):
    """Kubernetes' $(VAR) expansion: defined names are replaced, $$ is a
    literal $, anything else is left as written."""

    def one(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return defined[name] if name in defined else match.group(0)

    return REFERENCE.sub(one, text)


def unexpanded(text, defined):
    return [m.group(1) for m in REFERENCE.finditer(text) if m.group(1) and m.group(1) not in defined]


def containers(docs):
    for doc in docs:
        if doc.get("kind") in POD_KINDS:
            spec = doc["spec"]["template"]["spec"]
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                yield doc, c


def check_env(docs):
    problems, count = [], 0
    for doc, c in containers(docs):
        where = f"{doc['kind']}/{doc['metadata']['name']} container {c['name']}"
        seen = {}
        for env in c.get("env", []):
            count += 1
            for name in unexpanded(env.get("value", ""), seen):
                problems.append(f"{where}: env {env['name']} uses $({name}) before it is defined")
            seen[env["name"]] = "x"
        for part in c.get("command", []) + c.get("args", []):
            for name in unexpanded(part, seen):
                problems.append(f"{where}: command or args use $({name}), not in its env")
    for p in problems:
        print(f"kubernetes-pod: {p}", file=sys.stderr)
    if not problems:
        print(f"kubernetes-pod: every $(VAR) of {count} env entries is defined above its use")
    return 1 if problems else 0


def made_up_secrets(docs):
    values = {}
    for _, c in containers(docs):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                values.setdefault(ref["name"], {}).setdefault(ref["key"], secrets.token_hex(32))
    return values


def quantity_bytes(q):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for suffix, factor in units.items():
        if str(q).endswith(suffix):
            return int(float(str(q)[: -len(suffix)]) * factor)
    return int(q)


def quantity_cpus(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def docker_args(docs, statefulset, ordinal, secret_values, workdir, network, prefix, label):
    sts = next(d for d in docs if d.get("kind") == "StatefulSet" and d["metadata"]["name"] == statefulset)
    namespace = sts["metadata"].get("namespace", "default")
    pod = f"{statefulset}-{ordinal}"
    spec = sts["spec"]["template"]["spec"]
    c = spec["containers"][0]
    fqdn = f"{pod}.{sts['spec']['serviceName']}.{namespace}.svc.cluster.local"
    args = ["--detach", "--name", f"{prefix}-{pod}", "--hostname", pod, "--label", label,
            "--network", network, "--network-alias", fqdn]

    # Environment, in order, as the kubelet builds it.
    env = {}
    for entry in c.get("env", []):
        if "value" in entry:
            env[entry["name"]] = expand(entry["value"], env)
            continue
        source = entry["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[entry["name"]] = secret_values[ref["name"]][ref["key"]]
        elif "fieldRef" in source:
            field = source["fieldRef"]["fieldPath"]
            env[entry["name"]] = {"metadata.name": pod, "metadata.namespace": namespace}[field]
        else:
            raise SystemExit(f"kubernetes-pod: {pod}: no stand-in for {source}")
    env_file = os.path.join(workdir, f"{pod}.env")
    with open(os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        for name, value in env.items():
            if "\n" in value:
                raise SystemExit(f"kubernetes-pod: {pod}: env {name} spans lines")
            f.write(f"{name}={value}\n")
    args += ["--env-file", env_file]

    # Security context: the pod's, then the container's.
    pod_security = spec.get("securityContext", {})
    security = {**pod_security, **c.get("securityContext", {})}
    if "runAsUser" in security:
        args += ["--user", f"{security['runAsUser']}:{security.get('runAsGroup', security['runAsUser'])}"]
    if "fsGroup" in pod_security:
        args += ["--group-add", str(pod_security["fsGroup"])]
    if security.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    for cap in security.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", cap]
    if security.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if security.get("privileged"):
        raise SystemExit(f"kubernetes-pod: {pod} is privileged")

    limits = c.get("resources", {}).get("limits", {})
    if "memory" in limits:
        args += ["--memory", str(quantity_bytes(limits["memory"]))]
    if "cpu" in limits:
        args += ["--cpus", str(quantity_cpus(limits["cpu"]))]
    for option in spec.get("dnsConfig", {}).get("options", []):
        value = option.get("value")
        args += ["--dns-option", f"{option['name']}:{value}" if value is not None else option["name"]]

    # The readiness probe as Docker's health check (exec probes only).
    probe = c.get("readinessProbe", {})
    if "exec" in probe:
        args += ["--health-cmd", shlex.join(probe["exec"]["command"]),
                 "--health-interval", f"{probe.get('periodSeconds', 10)}s",
                 "--health-timeout", f"{probe.get('timeoutSeconds', 1)}s",
                 "--health-retries", str(probe.get("failureThreshold", 3)),
                 "--health-start-period", f"{probe.get('initialDelaySeconds', 0)}s"]

    # Volumes.
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    for mount in c.get("volumeMounts", []):
        name, path = mount["name"], mount["mountPath"]
        if name in claims:
            args += ["--mount", f"type=volume,src={prefix}-{name}-{pod},dst={path},volume-label={label}"]
            continue
        volume = volumes[name]
        if "configMap" in volume:
            source = configmaps[volume["configMap"]["name"]]
            directory = os.path.join(workdir, "configmaps", source["metadata"]["name"])
            os.makedirs(directory, mode=0o755, exist_ok=True)
            os.chmod(directory, 0o755)
            for key, text in source.get("data", {}).items():
                with open(os.path.join(directory, key), "w", encoding="utf-8") as f:
                    f.write(text)
                os.chmod(os.path.join(directory, key), volume["configMap"].get("defaultMode", 0o644))
            readonly = ",readonly" if mount.get("readOnly") else ""
            args += ["--mount", f"type=bind,src={os.path.abspath(directory)},dst={path}{readonly}"]
        elif "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            # An emptyDir is world-writable. Docker gives a tmpfs over a directory
            # of the image that directory's mode (755 for the redis image's /data)
            # whatever mode= says, so the tmpfs is the container user's instead.
            options = ["mode=0700"]
            if "runAsUser" in security:
                options += [f"uid={security['runAsUser']}", f"gid={security.get('runAsGroup', security['runAsUser'])}"]
            if size:
                options.append(f"size={quantity_bytes(size)}")
            args += ["--tmpfs", f"{path}:{','.join(options)}"]
        else:
            raise SystemExit(f"kubernetes-pod: {pod}: no stand-in for volume {name}")

    command = [expand(part, env) for part in c.get("command", [])]
    rest = [expand(part, env) for part in c.get("args", [])]
    if command:
        args += ["--entrypoint", command[0]]
    args.append(c["image"])
    args += command[1:] + rest
    return args


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    docs = load(argv[2])
    if argv[1] == "check-env":
        return check_env(docs)
    if argv[1] == "secrets":
        json.dump(made_up_secrets(docs), sys.stdout)
        return 0
    if argv[1] == "docker-args" and len(argv) == 10:
        statefulset, ordinal, secrets_file, workdir, network, prefix, label = argv[3:10]
        with open(secrets_file, encoding="utf-8") as f:
            secret_values = json.load(f)
        args = docker_args(docs, statefulset, int(ordinal), secret_values, workdir, network, prefix, label)
        sys.stdout.write("\0".join(args) + "\0")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
