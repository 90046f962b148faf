// Validates the Kubernetes base offline: renders it with `kubectl kustomize`, then checks every
// object against the Kubernetes API schemas (kubernetes-models, @kubernetes-models/prometheus-operator),
// refuses unknown kinds and unknown fields (field names from @kubernetes/client-node's models; for
// custom resources, the fields their schema validator never reads),
// and checks that selectors, probe ports and Service target ports point at what exists.
// Usage: node deploy/validate.mjs [KUSTOMIZE_DIR]   (default: deploy/kubernetes). Exit 1 on any problem.
import { execFileSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import yaml from "js-yaml";
import * as k8s from "@kubernetes/client-node";
import { ConfigMap, Secret, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

// apiVersion/kind -> [schema model, client-node model for field names (null: schema only)]
const KINDS = {
  "v1/ConfigMap": [ConfigMap, k8s.V1ConfigMap],
  "v1/Secret": [Secret, k8s.V1Secret],
  "v1/Service": [Service, k8s.V1Service],
  "apps/v1/Deployment": [Deployment, k8s.V1Deployment],
  "policy/v1/PodDisruptionBudget": [PodDisruptionBudget, k8s.V1PodDisruptionBudget],
  "monitoring.coreos.com/v1/ServiceMonitor": [ServiceMonitor, null],
};

/** Fields of `value` that the API type `type` (a client-node type name) does not have. */
function unknownFields(value, type, path, out) {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, array[1], `${path}[${i}]`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (typeof value === "object") for (const [k, v] of Object.entries(value)) unknownFields(v, map[1], `${path}.${k}`, out);
    return;
  }
  const model = k8s[type];
  if (typeof model?.getAttributeTypeMap !== "function" || typeof value !== "object" || Array.isArray(value)) return;
  const attributes = new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [key, v] of Object.entries(value)) {
    if (!attributes.has(key)) out.push(`${path}.${key}: unknown field (${type} has ${[...attributes.keys()].join(", ")})`);
    else unknownFields(v, attributes.get(key), `${path}.${key}`, out);
  }
}

/**
 * Fields of a custom resource that its schema does not know. The schema validators (compiled from
 * the CRD's OpenAPI schema) read every property the schema defines; a field they never read is
 * unknown. Used where @kubernetes/client-node has no model (ServiceMonitor).
 */
function unreadFields(model, name, out) {
  const seen = [];
  const watch = (value, path) => {
    if (value === null || typeof value !== "object") return value;
    const read = new Set();
    const children = new Map();
    seen.push([path, value, read]);
    return new Proxy(value, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof key !== "string") return v;
        read.add(key);
        if (v === null || typeof v !== "object") return v;
        if (!children.has(key)) children.set(key, watch(v, `${path}.${key}`));
        return children.get(key);
      },
    });
  };
  try {
    model.validate.call(watch(model, name));
  } catch {
    return; // schema errors are reported by the plain validation
  }
  for (const [path, value, read] of seen) {
    for (const key of Object.keys(value)) if (!read.has(key)) out.push(`${path}.${key}: unknown field (not in the ${name.split(" ")[0]} schema)`);
  }
}

function matches(selector, labels) {
  return Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);
}

/** Cross-object checks: what points at something must find it. */
function references(objects) {
  const out = [];
  const of = (kind) => objects.filter((o) => o.kind === kind);
  const pods = of("Deployment").map((d) => ({ name: d.metadata.name, labels: d.spec.template.metadata?.labels ?? {}, spec: d.spec.template.spec }));
  for (const d of of("Deployment")) {
    if (!matches(d.spec.selector?.matchLabels, d.spec.template.metadata?.labels)) out.push(`Deployment ${d.metadata.name}: selector does not match its pod labels`);
    for (const c of d.spec.template.spec.containers) {
      const names = new Set((c.ports ?? []).map((p) => p.name));
      for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
        const port = c[probe]?.httpGet?.port;
        if (typeof port === "string" && !names.has(port)) out.push(`Deployment ${d.metadata.name}: ${probe} port ${port} is not a container port`);
      }
      const volumes = new Set((d.spec.template.spec.volumes ?? []).map((v) => v.name));
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) out.push(`Deployment ${d.metadata.name}: volumeMount ${m.name} has no volume`);
    }
    for (const v of d.spec.template.spec.volumes ?? []) {
      const cm = v.configMap?.name;
      if (cm && !of("ConfigMap").some((o) => o.metadata.name === cm)) out.push(`Deployment ${d.metadata.name}: ConfigMap ${cm} is not in the base`);
    }
  }
  for (const s of of("Service")) {
    const targets = pods.filter((p) => matches(s.spec.selector, p.labels));
    if (targets.length === 0) out.push(`Service ${s.metadata.name}: selector matches no pod template`);
    for (const port of s.spec.ports ?? []) {
      const ok = targets.some((p) => p.spec.containers.some((c) => (c.ports ?? []).some((cp) => cp.name === port.targetPort || cp.containerPort === port.targetPort)));
      if (targets.length > 0 && !ok) out.push(`Service ${s.metadata.name}: targetPort ${port.targetPort} is no container port`);
    }
  }
  for (const p of of("PodDisruptionBudget")) {
    if (!pods.some((t) => matches(p.spec.selector?.matchLabels, t.labels))) out.push(`PodDisruptionBudget ${p.metadata.name}: selector matches no pod template`);
  }
  for (const m of of("ServiceMonitor")) {
    const services = of("Service").filter((s) => matches(m.spec.selector?.matchLabels, s.metadata.labels));
    if (services.length === 0) out.push(`ServiceMonitor ${m.metadata.name}: selector matches no Service`);
    for (const e of m.spec.endpoints ?? []) {
      if (!services.some((s) => s.spec.ports.some((p) => p.name === e.port))) out.push(`ServiceMonitor ${m.metadata.name}: no selected Service has a port named ${e.port}`);
    }
  }
  return out;
}

function main() {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = resolve(process.argv[2] ?? join(here, "kubernetes"));
  let rendered;
  try {
    rendered = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    console.error(`validate: kubectl kustomize ${dir} failed: ${e.stderr || e.message}`);
    process.exit(1);
  }
  const objects = yaml.loadAll(rendered).filter((o) => o);
  const problems = [];
  for (const o of objects) {
    const key = `${o.apiVersion}/${o.kind}`;
    const name = `${o.kind ?? "?"} ${o.metadata?.name ?? "?"}`;
    const entry = KINDS[key];
    if (!entry) {
      problems.push(`${name}: unknown kind ${key} (known: ${Object.keys(KINDS).join(", ")})`);
      continue;
    }
    const [Model, Fields] = entry;
    const model = new Model(o);
    try {
      model.validate();
    } catch (e) {
      problems.push(`${name}: ${e.message}`);
    }
    if (Fields) {
      const { apiVersion, kind, ...rest } = o;
      unknownFields(rest, Fields.name, name, problems);
    } else {
      unreadFields(model, name, problems);
    }
  }
  problems.push(...references(objects));
  if (objects.length === 0) problems.push(`${dir}: nothing rendered`);
  if (problems.length > 0) {
    console.error(`validate: ${dir}: ${problems.length} problem(s):\n  - ${problems.join("\n  - ")}`);
    process.exit(1);
  }
  const kinds = objects.map((o) => o.kind).join(", ");
  console.log(`validate: ${dir}: ${objects.length} objects valid (${kinds})`);
}

main();
