#!/usr/bin/env bash
# Fetches the schemas that tests/unit/deploy/test_kubernetes.py validates the manifests with, into
# build/kubernetes-schemas/ (ignored), from package registries only. Called by scripts/install.sh; idempotent.
#
#   core.json                  Kubernetes' own objects: the strict JSON schemas (unknown fields are errors) of
#                              Kubernetes $K8S_VERSION, from the PyPI package kubernetes-validate.
#   crds/flinkdeployments.yaml FlinkDeployment: the CRD inside org.apache.flink:flink-kubernetes-operator-api
#                              (Maven Central; $FLINK_OPERATOR is the newest version this registry serves).
#   crds/kafka*.yaml           Kafka, KafkaNodePool, KafkaTopic, KafkaUser: generated, as Strimzi's own build does,
#                              by io.strimzi:crd-generator from the model classes in io.strimzi:api (Maven Central;
#                              $STRIMZI is the newest version of the generator this registry serves).
#   crds/keda.sh_*.yaml        ScaledObject, TriggerAuthentication: the CRDs in the Go module
#                              github.com/kedacore/keda/v2 (Go module proxy).
set -euo pipefail
cd "$(dirname "$0")/../.."

K8S_VERSION=1.34.0
KUBERNETES_VALIDATE=1.37.0  # bundles the schemas of Kubernetes 1.25 to 1.37
FLINK_OPERATOR=1.10.0
STRIMZI=0.45.0
KEDA=v2.18.1
dest=build/kubernetes-schemas
stamp="$K8S_VERSION $KUBERNETES_VALIDATE $FLINK_OPERATOR $STRIMZI $KEDA"
if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$stamp" ]; then
  exit 0
fi
log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
extract() {  # extract ARCHIVE MEMBER DEST: one file out of a wheel or jar (zip), without needing unzip
  .venv/bin/python -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$@"
}
log "Kubernetes and CRD schemas -> $dest"
rm -rf "$dest"
mkdir -p "$dest/crds" "$dest/download"
tmp=$PWD/$dest/download

# Kubernetes objects.
.venv/bin/pip download -q --no-deps "kubernetes-validate==$KUBERNETES_VALIDATE" -d "$tmp"
extract "$tmp/kubernetes_validate-$KUBERNETES_VALIDATE-py3-none-any.whl" \
  "kubernetes_validate/kubernetes-json-schema/v$K8S_VERSION-local-strict/_definitions.json" "$dest/core.json"

# Flink Kubernetes Operator.
mvn -q -B dependency:copy -Dartifact="org.apache.flink:flink-kubernetes-operator-api:$FLINK_OPERATOR" \
  -DoutputDirectory="$tmp"
extract "$tmp/flink-kubernetes-operator-api-$FLINK_OPERATOR.jar" \
  META-INF/fabric8/flinkdeployments.flink.apache.org-v1.yml "$dest/crds/flinkdeployments.yaml"

# Strimzi: the generator and the model it reads (the generator jar is shaded: it needs nothing else).
for artifact in api crd-generator; do
  mvn -q -B dependency:copy -Dartifact="io.strimzi:$artifact:$STRIMZI" -DoutputDirectory="$tmp"
done
model=io.strimzi.api.kafka.model
java -cp "$tmp/api-$STRIMZI.jar:$tmp/crd-generator-$STRIMZI.jar" io.strimzi.crdgenerator.CrdGenerator \
  --target-kube 1.16+ --crd-api-version v1 --api-versions v1beta2 --storage-version v1beta2 --yaml \
  "$model.kafka.Kafka=$dest/crds/kafkas.yaml" \
  "$model.nodepool.KafkaNodePool=$dest/crds/kafkanodepools.yaml" \
  "$model.topic.KafkaTopic=$dest/crds/kafkatopics.yaml" \
  "$model.user.KafkaUser=$dest/crds/kafkausers.yaml" 2>&1 | { grep -v '^SLF4J' || true; }
for crd in kafkas kafkanodepools kafkatopics kafkausers; do
  test -s "$dest/crds/$crd.yaml" || { echo "the Strimzi CRD generator wrote no $crd.yaml" >&2; exit 1; }
done

# KEDA: the module's files, read from the module cache (nothing is built).
keda_dir=$("${GO:-/usr/local/go/bin/go}" mod download -json "github.com/kedacore/keda/v2@$KEDA" |
  .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
for crd in keda.sh_scaledobjects.yaml keda.sh_triggerauthentications.yaml; do
  cp "$keda_dir/config/crd/bases/$crd" "$dest/crds/$crd"
done

rm -rf "$tmp"
echo "$stamp" > "$dest/.complete"
