/**
 * deploy/kubernetes/daemonset.yaml: each document validated with kubernetes-models (validators generated
 * from the Kubernetes OpenAPI schemas: types, enums, quantities, required fields). Those validators let
 * unknown fields through, as `kubectl apply` does by default, so the security-relevant objects are also
 * checked field by field against the models' own type declarations (a typo like `privilegd` fails).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { describe, expect, it } from 'vitest';
import { readYamlDocuments } from './support.js';

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked as plain data
type Json = any;

const docs = readYamlDocuments('deploy/kubernetes/daemonset.yaml') as Json[];
const daemonSet = docs.find((d) => d.kind === 'DaemonSet');
const configMap = docs.find((d) => d.kind === 'ConfigMap');
const pod = daemonSet.spec.template.spec;
const container = pod.containers[0];

/** Property names of the interface declared in kubernetes-models/<model>.d.ts. */
function knownFields(model: string): Set<string> {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve('kubernetes-models/package.json'));
  const dts = readFileSync(join(root, `${model}.d.ts`), 'utf8');
  const body = dts.slice(
    dts.indexOf('export interface'),
    dts.indexOf('\n}', dts.indexOf('export interface')),
  );
  return new Set([...body.matchAll(/^ {4}"([A-Za-z0-9]+)"\??:/gm)].map((m) => m[1]!));
}

function unknownFields(object: Json, model: string): string[] {
  const known = knownFields(model);
  return Object.keys(object).filter((k) => !known.has(k));
}

describe('deploy/kubernetes/daemonset.yaml', () => {
  it('holds a Namespace, a ConfigMap and a DaemonSet, all valid against the Kubernetes schemas', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ConfigMap', 'DaemonSet']);
    const models: Record<string, new (data: Json) => { validate(): void }> = {
      Namespace,
      ConfigMap,
      DaemonSet,
    };
    for (const doc of docs) expect(() => new models[doc.kind]!(doc).validate(), doc.kind).not.toThrow();
    // the validators do reject a wrong enum value
    const broken = structuredClone(daemonSet);
    broken.spec.template.spec.volumes[0].hostPath.type = 'Dir';
    expect(() => new DaemonSet(broken).validate()).toThrow(/hostPath\/type/);
  });

  it('uses only fields Kubernetes knows in the pod, container, security contexts, volumes and probe', () => {
    expect(unknownFields(daemonSet.spec, 'apps/v1/DaemonSetSpec')).toEqual([]);
    expect(unknownFields(pod, 'v1/PodSpec')).toEqual([]);
    expect(unknownFields(pod.securityContext, 'v1/PodSecurityContext')).toEqual([]);
    expect(unknownFields(container, 'v1/Container')).toEqual([]);
    expect(unknownFields(container.securityContext, 'v1/SecurityContext')).toEqual([]);
    expect(unknownFields(container.livenessProbe, 'v1/Probe')).toEqual([]);
    for (const v of pod.volumes) expect(unknownFields(v, 'v1/Volume'), v.name).toEqual([]);
    for (const m of container.volumeMounts) expect(unknownFields(m, 'v1/VolumeMount'), m.name).toEqual([]);
  });

  it('mounts the /dev/bus/usb directory (not single nodes) and /run/udev read-only', () => {
    const volume = (name: string) => pod.volumes.find((v: Json) => v.name === name);
    const mount = (name: string) => container.volumeMounts.find((m: Json) => m.name === name);
    expect(volume('dev-bus-usb').hostPath).toEqual({ path: '/dev/bus/usb', type: 'Directory' });
    expect(mount('dev-bus-usb').mountPath).toBe('/dev/bus/usb');
    expect(volume('run-udev').hostPath.path).toBe('/run/udev');
    expect(mount('run-udev')).toMatchObject({ mountPath: '/run/udev', readOnly: true });
  });

  it('grants device access (privileged) but runs as the non-root image user in plugdev', () => {
    expect(container.securityContext.privileged).toBe(true);
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      supplementalGroups: [46],
    });
    // Kubernetes rejects privileged together with allowPrivilegeEscalation: false
    expect(container.securityContext.allowPrivilegeEscalation).not.toBe(false);
  });

  it('names each agent after its node and takes settings from the ConfigMap', () => {
    const id = container.env.find((e: Json) => e.name === 'REPLUG_ID');
    expect(id.valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
    expect(container.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    expect(configMap.metadata.namespace).toBe(daemonSet.metadata.namespace);
    expect(Object.keys(configMap.data)).toEqual(
      expect.arrayContaining(['REPLUG_MQTT_URL', 'REPLUG_RUNTIME_LABEL']),
    );
    expect(container.args).toEqual(['agent']);
  });

  it('schedules on USB nodes of the image architectures, tolerates control-plane taints, sets limits', () => {
    expect(pod.nodeSelector['replug.io/usb']).toBe('true');
    const arch =
      pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]
        .matchExpressions[0];
    expect(arch).toMatchObject({ key: 'kubernetes.io/arch', operator: 'In' });
    expect(arch.values).toEqual(expect.arrayContaining(['arm64', 'arm', 'amd64']));
    expect(pod.tolerations.map((t: Json) => t.key)).toContain('node-role.kubernetes.io/control-plane');
    expect(container.resources.limits).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container.livenessProbe.exec.command).toEqual(['node', '/opt/replug/healthcheck.mjs']);
  });
});
