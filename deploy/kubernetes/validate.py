"""Checks the manifests of deploy/kubernetes offline; run by validate.sh in its venv.

usage: validate.py DIR METRICS_RS VERSION...

1. Every Kubernetes object (every YAML document of every *.yaml here, but the kustomizations
   and the prometheus-adapter rules) against the JSON schema of its kind for each VERSION, in
   kubernetes-validate's strict form: an unknown or misspelt field is an error, as is a kind
   without a built-in schema, unless it is one of CUSTOM_KINDS below.
2. Custom resources (no schema ships for them): the ServiceMonitor's apiVersion and kind, and
   every field it uses, against the short list of fields of the Prometheus Operator's
   monitoring.coreos.com/v1 ServiceMonitor that these manifests may use.
3. What no schema sees: names that must agree across objects (selectors and pod labels, named
   ports, volumes, ConfigMaps, Secrets, the StatefulSet's Service, the HPA's target and
   metrics), every file listed by a kustomization, the shell scripts (sh -n), and the
   prometheus-adapter rules, whose series must be ones ignite's GET /metrics exports
   (read from src/server/metrics.rs).

Prints one line per problem and exits 1 if there is any.
"""

import pathlib
import re
import subprocess
import sys

import yaml
from kubernetes_validate import utils

# Kinds without a built-in schema, checked by check_custom.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# The fields of monitoring.coreos.com/v1 ServiceMonitor these manifests may use (a subset of
# the Prometheus Operator's CRD); anything else is taken for a typo.
SERVICEMONITOR_SPEC = {"selector", "endpoints", "namespaceSelector", "jobLabel"}
SERVICEMONITOR_ENDPOINT = {"port", "path", "scheme", "interval", "scrapeTimeout", "authorization"}
SERVICEMONITOR_AUTH = {"type", "credentials"}
# Created by the operator, not shipped (docs/kubernetes.md, "Keys").
EXTERNAL_SECRETS = {"ignite-api-keys", "ignite-metrics-key"}
NOT_OBJECTS = {"kustomization.yaml", "prometheus-adapter-rules.yaml"}

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def load(path):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problem(path, f"not YAML: {e}")
        return []


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_schema(where, obj, versions):
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CUSTOM_KINDS:
        return
    for version in versions:
        try:
            utils.validate(obj, version, strict=True)
        except utils.SchemaNotFoundError:
            problem(where, f"no Kubernetes {version} schema for {key[1]} {key[0]} (and not a known custom kind)")
            return
        except utils.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problem(where, f"Kubernetes {version}: {path}: {e.message}")


def check_custom(where, obj, services):
    spec = obj.get("spec") or {}
    for k in set(spec) - SERVICEMONITOR_SPEC:
        problem(where, f"spec.{k}: not a ServiceMonitor field these manifests use")
    selected = [s for s in services if matches((spec.get("selector") or {}).get("matchLabels"), s["metadata"].get("labels", {}))]
    if len(selected) != 1:
        problem(where, f"spec.selector must select exactly one Service, selects {[s['metadata']['name'] for s in selected]}")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        problem(where, "spec.endpoints: a non-empty list is required")
        return
    for i, ep in enumerate(endpoints):
        for k in set(ep) - SERVICEMONITOR_ENDPOINT:
            problem(where, f"spec.endpoints.{i}.{k}: not a ServiceMonitor endpoint field these manifests use")
        ports = {p.get("name") for s in selected for p in s["spec"].get("ports", [])}
        if ep.get("port") not in ports:
            problem(where, f"spec.endpoints.{i}.port {ep.get('port')!r} is not a port of the selected Service")
        auth = ep.get("authorization") or {}
        for k in set(auth) - SERVICEMONITOR_AUTH:
            problem(where, f"spec.endpoints.{i}.authorization.{k}: unknown field")
        secret = (auth.get("credentials") or {}).get("name")
        if auth and secret not in EXTERNAL_SECRETS:
            problem(where, f"spec.endpoints.{i}.authorization names Secret {secret!r}, which nobody creates")


def sh_syntax(where, script):
    r = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        problem(where, f"shell syntax: {r.stderr.strip()}")


def check_pods(where, obj, by_kind):
    tmpl = obj["spec"]["template"]
    labels = tmpl["metadata"].get("labels", {})
    pod = tmpl["spec"]
    if not matches(obj["spec"]["selector"].get("matchLabels"), labels):
        problem(where, "spec.selector does not match the pod template's labels")
    svc = obj["spec"].get("serviceName")
    headless = [s for s in by_kind.get("Service", []) if s["metadata"]["name"] == svc]
    if obj["kind"] == "StatefulSet" and (not headless or headless[0]["spec"].get("clusterIP") != "None"):
        problem(where, f"spec.serviceName {svc!r} is not a headless Service of these manifests")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    configmaps = {c["metadata"]["name"]: c for c in by_kind.get("ConfigMap", [])}
    for v in volumes.values():
        cm = v.get("configMap")
        if cm and cm["name"] not in configmaps and not cm.get("optional"):
            problem(where, f"volume {v['name']}: ConfigMap {cm['name']!r} is not in these manifests")
        secret = v.get("secret")
        if secret and secret["secretName"] not in EXTERNAL_SECRETS:
            problem(where, f"volume {v['name']}: Secret {secret['secretName']!r} is not one the docs say to create")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        cwhere = f"{where}: container {c['name']}"
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problem(cwhere, f"mounts volume {m['name']!r}, which the pod does not have")
        ports = {p.get("name") for p in c.get("ports", [])}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
            if isinstance(port, str) and port not in ports:
                problem(cwhere, f"{probe} uses port {port!r}, which the container does not name")
        cmd = c.get("command", [])
        if cmd[:2] == ["/bin/sh", "-c"] and len(cmd) > 2:
            sh_syntax(cwhere, cmd[2])
        probe_cmd = ((c.get("readinessProbe") or {}).get("exec") or {}).get("command", [])
        if probe_cmd[:2] == ["/bin/sh", "-c"]:
            sh_syntax(f"{cwhere}: readinessProbe", probe_cmd[2])
        if c.get("command") == ["/bin/sh", "/etc/ignite/entrypoint/entrypoint.sh"]:
            entry = configmaps.get(volumes.get("entrypoint", {}).get("configMap", {}).get("name"))
            if not entry or "entrypoint.sh" not in entry.get("data", {}):
                problem(cwhere, "runs entrypoint.sh, which no ConfigMap of the entrypoint volume holds")
    for s in by_kind.get("Service", []):
        # A per-pod Service (examples/) also selects the label the StatefulSet controller adds.
        sel = {k: v for k, v in s["spec"].get("selector", {}).items() if k != "statefulset.kubernetes.io/pod-name"}
        if not matches(sel, labels):
            problem(f"Service {s['metadata']['name']}", f"selector {sel} does not match the pods of {where}")
        for p in s["spec"].get("ports", []):
            target = p.get("targetPort")
            named = {q.get("name") for c in pod.get("containers", []) for q in c.get("ports", [])}
            if isinstance(target, str) and target not in named:
                problem(f"Service {s['metadata']['name']}", f"targetPort {target!r} is not a named container port")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not matches(pdb["spec"]["selector"].get("matchLabels"), labels):
            problem(f"PodDisruptionBudget {pdb['metadata']['name']}", f"selects none of the pods of {where}")


def check_hpa(obj, by_kind, adapter_metrics):
    where = f"HorizontalPodAutoscaler {obj['metadata']['name']}"
    ref = obj["spec"]["scaleTargetRef"]
    targets = [o for o in by_kind.get(ref["kind"], []) if o["metadata"]["name"] == ref["name"]]
    if not targets:
        problem(where, f"scales {ref['kind']} {ref['name']!r}, which is not in these manifests")
    for m in obj["spec"].get("metrics", []):
        name = (m.get("pods") or {}).get("metric", {}).get("name")
        if name and name not in adapter_metrics:
            problem(where, f"metric {name!r} is not served by prometheus-adapter-rules.yaml")


def check_adapter_rules(path, rel, exported):
    served = set()
    docs = load(path)
    rules = docs[0].get("rules") if docs and isinstance(docs[0], dict) else None
    if not isinstance(rules, list) or not rules:
        problem(rel, "a non-empty `rules:` list is required")
        return served
    for i, r in enumerate(rules):
        where = f"{rel}: rules.{i}"
        for k in set(r) - {"seriesQuery", "resources", "name", "metricsQuery"}:
            problem(where, f"{k}: not a prometheus-adapter rule field")
        overrides = (r.get("resources") or {}).get("overrides") or {}
        if overrides.get("pod") != {"resource": "pod"} or overrides.get("namespace") != {"resource": "namespace"}:
            problem(where, "resources.overrides must map the `pod` and `namespace` labels to their resources")
        query = r.get("metricsQuery", "")
        if "<<.LabelMatchers>>" not in query or "<<.GroupBy>>" not in query:
            problem(where, "metricsQuery must use <<.LabelMatchers>> and <<.GroupBy>>")
        for series in set(re.findall(r"\bignite_[a-z_]+", r.get("seriesQuery", "") + " " + query)):
            if series not in exported:
                problem(where, f"{series} is not a series ignite's /metrics exports")
        name = (r.get("name") or {}).get("as")
        if not name:
            problem(where, "name.as is required")
        served.add(name)
    return served


def main():
    root = pathlib.Path(sys.argv[1])
    exported = set(re.findall(r'"(ignite_[a-z_]+)"', pathlib.Path(sys.argv[2]).read_text()))
    versions = sys.argv[3:]
    objects = []  # (file, object)
    listed = set()
    adapter_metrics = set()
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root)
        if path.name == "kustomization.yaml":
            for k in load(path):
                if (k.get("apiVersion"), k.get("kind")) != ("kustomize.config.k8s.io/v1beta1", "Kustomization"):
                    problem(rel, "not a kustomize.config.k8s.io/v1beta1 Kustomization")
                for r in k.get("resources", []):
                    if not (path.parent / r).is_file():
                        problem(rel, f"lists {r}, which does not exist")
                    listed.add((path.parent / r).resolve())
        elif path.name == "prometheus-adapter-rules.yaml":
            adapter_metrics |= check_adapter_rules(path, rel, exported)
        else:
            for obj in load(path):
                if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
                    problem(rel, "a document without apiVersion and kind")
                    continue
                objects.append((rel, path, obj))
    for rel, path, obj in objects:
        if rel.parts[0] != "examples" and path.resolve() not in listed:
            problem(rel, "not listed in a kustomization.yaml (examples/ excepted)")
    by_kind = {}
    for _, _, obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    for rel, _, obj in objects:
        where = f"{rel}: {obj['kind']} {obj.get('metadata', {}).get('name')}"
        check_schema(where, obj, versions)
        key = (obj["apiVersion"], obj["kind"])
        if key in CUSTOM_KINDS:
            check_custom(where, obj, by_kind.get("Service", []))
    # Cross-checks, once the schemas have passed (they assume the shapes the schemas enforce).
    if not problems:
        for rel, _, obj in objects:
            if obj["kind"] in ("StatefulSet", "DaemonSet", "Deployment"):
                check_pods(f"{rel}: {obj['kind']} {obj['metadata']['name']}", obj, by_kind)
            elif obj["kind"] == "HorizontalPodAutoscaler":
                check_hpa(obj, by_kind, adapter_metrics)
            elif obj["kind"] == "ConfigMap":
                for key, value in obj.get("data", {}).items():
                    if key.endswith(".sh"):
                        sh_syntax(f"{rel}: ConfigMap {obj['metadata']['name']}: {key}", value)
    for p in problems:
        print(p)
    kinds = sorted({o["kind"] for _, _, o in objects})
    print(
        f"{'FAILED' if problems else 'ok'}: {len(objects)} objects ({', '.join(kinds)}) against Kubernetes "
        f"{', '.join(versions)} (strict); {len(adapter_metrics)} prometheus-adapter metrics; {len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
