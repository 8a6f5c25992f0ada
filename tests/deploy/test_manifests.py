"""Unit-style checks of the rendered manifests: wiring (service -> Ray head, database,
secrets), probes, security contexts, labels, GPU groups, names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.deploy.chart import (
    RELEASE,
    Helm,
    by_kind,
    env_of,
    one,
    pod_specs,
    ray_cluster_containers,
    values_of,
)

RECOMMENDED = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
    "helm.sh/chart",
}
SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def rendered(helm: Helm, case: Path | None, **kw: Any) -> tuple[dict[str, Any], ...]:
    return helm.template(*([case] if case else []), **kw)


def api_container(docs: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    (container,) = one(docs, "Deployment", "api")["spec"]["template"]["spec"]["containers"]
    return container


def settings(docs: tuple[dict[str, Any], ...]) -> dict[str, str]:
    return one(docs, "ConfigMap", "config")["data"]


# --- wiring -------------------------------------------------------------------------------


def test_service_reaches_the_ray_jobs_api_on_the_head_service(
    helm: Helm, case: Path | None
) -> None:
    docs = rendered(helm, case)
    cluster = one(docs, "RayCluster")
    address = urlsplit(settings(docs)["HPO_RAY_ADDRESS"])
    assert address.scheme == "http"
    # KubeRay names the head Service "<cluster>-head-svc" (for names up to 50 characters).
    assert address.hostname == f"{cluster['metadata']['name']}-head-svc"
    assert address.port == 8265
    head = cluster["spec"]["headGroupSpec"]
    (ray_head,) = head["template"]["spec"]["containers"]
    assert {"name": "dashboard", "containerPort": 8265} in ray_head["ports"]
    assert head["rayStartParams"]["dashboard-host"] == "0.0.0.0"
    # The API container reads the ConfigMap.
    container = api_container(docs)
    assert {"configMapRef": {"name": one(docs, "ConfigMap")["metadata"]["name"]}} in container[
        "envFrom"
    ]


def test_settings_for_a_container(helm: Helm, case: Path | None) -> None:
    data = settings(rendered(helm, case))
    values = values_of(case)
    assert data["HPO_HOST"] == "0.0.0.0"
    assert data["HPO_PORT"] == str(values["service"]["containerPort"])
    assert data["HPO_HOME"] == "/var/lib/hpo"
    assert data["HPO_RAY_DASHBOARD_URL"].startswith("http")


def test_database_url_points_at_the_database(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    values = values_of(case)["database"]
    env = env_of(api_container(docs))
    if values["postgresql"]["enabled"]:
        url = env["HPO_DATABASE_URL"]["value"]
        parts = urlsplit(url)
        assert parts.scheme == "postgresql+psycopg"
        statefulset = one(docs, "StatefulSet", "database")
        services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
        assert parts.hostname in services and parts.port == 5432
        selector = services[parts.hostname]["spec"]["selector"]
        assert selector.items() <= statefulset["spec"]["template"]["metadata"]["labels"].items()
        assert parts.username == values["postgresql"]["username"]
        assert parts.path == "/" + values["postgresql"]["database"]
        # The password comes from the Secret PostgreSQL itself is started with.
        assert parts.password == "$(HPO_DB_PASSWORD)"
        names = list(env)
        assert names.index("HPO_DB_PASSWORD") < names.index("HPO_DATABASE_URL")
        (postgres,) = statefulset["spec"]["template"]["spec"]["containers"]
        assert (
            env_of(postgres)["POSTGRES_PASSWORD"]["valueFrom"]
            == env["HPO_DB_PASSWORD"]["valueFrom"]
        )
    else:
        assert not by_kind(docs, "StatefulSet")
        ref = env["HPO_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        external = values["external"]
        if external["existingSecret"]:
            assert ref == {"name": external["existingSecret"], "key": external["existingSecretKey"]}


def test_ray_nodes_share_the_service_settings(helm: Helm, case: Path | None) -> None:
    """Study drivers run on the Ray head and write to the database: every Ray container
    gets the same database URL, storage path and Ray token as the service, and the image."""
    docs = rendered(helm, case)
    api = api_container(docs)
    api_env = env_of(api)
    cluster = one(docs, "RayCluster")
    config_name = one(docs, "ConfigMap")["metadata"]["name"]
    groups = {g["name"]: g for g in values_of(case)["ray"]["workerGroups"]}
    for where, container in ray_cluster_containers(cluster):
        env = env_of(container)
        for name in ("HPO_DATABASE_URL", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN"):
            assert env[name] == api_env[name], (where, name)
        if "HPO_DB_PASSWORD" in api_env:
            assert env["HPO_DB_PASSWORD"] == api_env["HPO_DB_PASSWORD"]
        for name in ("HPO_STORAGE_PATH", "HPO_HOME"):
            ref = env[name]["valueFrom"]["configMapKeyRef"]
            assert ref == {"name": config_name, "key": name}, where
        group = groups.get(where.removeprefix("worker:"), {})
        if "image" in group:
            assert container["image"].endswith(":" + group["image"]["tag"]), where
        else:
            assert container["image"] == api["image"], where


def test_ray_token_authentication(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    cluster = one(docs, "RayCluster")
    auth = cluster["spec"]["authOptions"]
    assert auth["mode"] == "token"
    ref = env_of(api_container(docs))["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
    # KubeRay reads the key `auth_token` of authOptions.secretName.
    assert ref == {"name": auth["secretName"], "key": "auth_token"}
    assert env_of(api_container(docs))["RAY_AUTH_MODE"]["value"] == "token"
    if cluster["spec"]["enableInTreeAutoscaling"]:
        env = env_of({"env": cluster["spec"]["autoscalerOptions"]["env"]})
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == ref
    existing = values_of(case)["ray"]["auth"]["existingSecret"]
    if existing:
        assert auth["secretName"] == existing
    else:
        secret = one(docs, "Secret")
        assert secret["metadata"]["name"] == auth["secretName"]
        assert "auth_token" in secret["data"]


def test_secret_references_resolve(helm: Helm, case: Path | None) -> None:
    """Every secretKeyRef names a key the chart's Secret has, or an existing Secret the
    values name; every configMapKeyRef a key of the chart's ConfigMap."""
    docs = rendered(helm, case)
    values = values_of(case)
    secrets = {s["metadata"]["name"]: set(s.get("data", {})) for s in by_kind(docs, "Secret")}
    configmaps = {c["metadata"]["name"]: set(c["data"]) for c in by_kind(docs, "ConfigMap")}
    external = {
        values["service"]["apiTokens"]["existingSecret"],
        values["ray"]["auth"]["existingSecret"],
        values["database"]["postgresql"]["existingSecret"],
        values["database"]["external"]["existingSecret"],
    } - {""}
    external |= {
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in values["ray"]["extraEnv"]
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    envs = []
    for doc in docs:
        for _where, _meta, spec in pod_specs(doc):
            for container in spec["containers"]:
                envs += container.get("env", [])
        if doc["kind"] == "RayCluster" and doc["spec"].get("autoscalerOptions"):
            envs += doc["spec"]["autoscalerOptions"]["env"]
    for item in envs:
        source = item.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if ref["name"] in secrets:
                assert ref["key"] in secrets[ref["name"]], item
            else:
                assert ref["name"] in external, item
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            assert ref["key"] in configmaps[ref["name"]], item


# --- secrets ------------------------------------------------------------------------------


def test_generated_secrets_are_random_and_never_empty(helm: Helm) -> None:
    import base64

    first = one(helm.template(), "Secret")
    second = one(helm.template(sets=("tests.enabled=true",)), "Secret")
    assert set(first["data"]) == {"api-tokens", "auth_token", "postgres-password"}
    assert first["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for key, encoded in first["data"].items():
        value = base64.b64decode(encoded).decode()
        assert len(value) >= 32 and value.isalnum(), key
        assert encoded != second["data"][key], f"{key} is not generated per install"


def test_given_secrets_are_used(helm: Helm) -> None:
    import base64

    docs = helm.template(
        sets=(
            "service.apiTokens.value=tok-a\\,tok-b",
            "ray.auth.token=ray-secret-1",
            "database.postgresql.password=pg-pass-1",
        )
    )
    data = {k: base64.b64decode(v).decode() for k, v in one(docs, "Secret")["data"].items()}
    assert data == {
        "api-tokens": "tok-a,tok-b",
        "auth_token": "ray-secret-1",
        "postgres-password": "pg-pass-1",
    }


def test_existing_secrets_leave_nothing_to_generate(helm: Helm) -> None:
    docs = helm.template(
        sets=(
            "service.apiTokens.existingSecret=my-api",
            "ray.auth.existingSecret=my-ray",
            "database.postgresql.existingSecret=my-pg",
            "database.postgresql.existingSecretKey=password",
        )
    )
    assert not by_kind(docs, "Secret")
    env = env_of(api_container(docs))
    assert env["HPO_API_TOKENS"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-api",
        "key": "api-tokens",
    }
    assert env["HPO_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "my-pg",
        "key": "password",
    }
    assert one(docs, "RayCluster")["spec"]["authOptions"]["secretName"] == "my-ray"


# --- probes, security -----------------------------------------------------------------------


def test_probes(helm: Helm, case: Path | None) -> None:
    container = api_container(rendered(helm, case))
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert [p["name"] for p in container["ports"]] == ["http"]
    assert container["command"] == ["hpo", "serve"]
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_service_security_context(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    pod = one(docs, "Deployment", "api")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    context = api_container(docs)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # The writable places a read-only root needs.
    mounts = {m["mountPath"]: m["name"] for m in api_container(docs)["volumeMounts"]}
    assert {"/var/lib/hpo", "/tmp"} <= set(mounts)
    assert settings(docs)["HPO_HOME"] == "/var/lib/hpo"


def test_every_container_runs_non_root_without_capabilities(helm: Helm, case: Path | None) -> None:
    for doc in rendered(helm, case):
        for where, _meta, spec in pod_specs(doc):
            pod_ctx = spec.get("securityContext", {})
            for container in spec["containers"]:
                ctx = container.get("securityContext", {})
                what = f"{doc['kind']}/{doc['metadata']['name']} {where} {container['name']}"
                assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, what
                assert ctx.get("allowPrivilegeEscalation") is False, what
                assert ctx.get("capabilities", {}).get("drop") == ["ALL"], what
                assert container.get("resources", {}).get("limits"), what
                assert pod_ctx.get("seccompProfile", {}).get("type") == "RuntimeDefault", what


def test_volume_mounts_have_volumes(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    claims = {c["metadata"]["name"] for c in by_kind(docs, "PersistentVolumeClaim")}
    existing_claim = values_of(case)["ray"]["storage"]["persistentVolumeClaim"]["existingClaim"]
    for doc in docs:
        templates = {
            t["metadata"]["name"] for t in doc.get("spec", {}).get("volumeClaimTemplates", [])
        }
        for where, _meta, spec in pod_specs(doc):
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for container in spec["containers"]:
                for mount in container.get("volumeMounts", []):
                    assert mount["name"] in volumes or mount["name"] in templates, (where, mount)
            for volume in volumes.values():
                if "persistentVolumeClaim" in volume:
                    name = volume["persistentVolumeClaim"]["claimName"]
                    assert name in claims or name == existing_claim, (where, name)


# --- storage --------------------------------------------------------------------------------


def test_storage_path_is_shared_by_every_ray_node(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    storage = values_of(case)["ray"]["storage"]
    path = settings(docs)["HPO_STORAGE_PATH"]
    cluster = one(docs, "RayCluster")
    if storage["uri"]:
        assert path == storage["uri"]
        for _where, container in ray_cluster_containers(cluster):
            assert "volumeMounts" not in container
    else:
        assert path.startswith(storage["mountPath"].rstrip("/") + "/")
        claims = set()
        for where, _meta, spec in pod_specs(cluster):
            (container,) = spec["containers"]
            (mount,) = [m for m in container["volumeMounts"] if m["name"] == "shared"]
            assert mount["mountPath"] == storage["mountPath"], where
            (volume,) = [v for v in spec["volumes"] if v["name"] == "shared"]
            claims.add(volume["persistentVolumeClaim"]["claimName"])
        assert len(claims) == 1
        for claim in by_kind(docs, "PersistentVolumeClaim"):
            assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


# --- labels and names ---------------------------------------------------------------------


def test_recommended_labels_everywhere(helm: Helm, case: Path | None) -> None:
    for doc in rendered(helm, case):
        labels = doc["metadata"]["labels"]
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        assert set(labels) >= RECOMMENDED, (what, RECOMMENDED - set(labels))
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        for key, value in labels.items():
            assert LABEL_VALUE.match(str(value)) and len(str(value)) <= 63, (what, key, value)
        for where, meta, _spec in pod_specs(doc):
            assert set(meta["labels"]) >= RECOMMENDED, (what, where)


def test_selectors_use_only_stable_labels(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    for doc in by_kind(docs, "Deployment") + by_kind(docs, "StatefulSet"):
        selector = doc["spec"]["selector"]["matchLabels"]
        assert set(selector) == SELECTOR_KEYS, doc["metadata"]["name"]
        assert selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
    pods = [meta["labels"] for doc in docs for _w, meta, _s in pod_specs(doc)]
    for service in by_kind(docs, "Service"):
        selector = service["spec"]["selector"]
        if service["metadata"]["labels"]["app.kubernetes.io/component"] == "ray-dashboard":
            # The head pod KubeRay labels: ray.io/cluster + ray.io/node-type.
            assert selector == {
                "ray.io/cluster": one(docs, "RayCluster")["metadata"]["name"],
                "ray.io/node-type": "head",
            }
            continue
        assert set(selector) == SELECTOR_KEYS, service["metadata"]["name"]
        matching = [labels for labels in pods if selector.items() <= labels.items()]
        assert matching, f"Service {service['metadata']['name']} selects no pod"


def test_components_do_not_select_each_other(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    api = one(docs, "Service", "api")["spec"]["selector"]
    for doc in docs:
        for where, meta, _spec in pod_specs(doc):
            selected = api.items() <= meta["labels"].items()
            assert selected == (doc["kind"] == "Deployment"), (doc["kind"], where)


def test_names_fit_kubernetes_limits(helm: Helm) -> None:
    long_release = "a-release-name-as-long-as-helm-allows-fifty-three-chr"  # helm's maximum
    assert len(long_release) == 53
    docs = helm.template(release=long_release)
    for doc in docs:
        name = doc["metadata"]["name"]
        assert DNS_LABEL.match(name) and len(name) <= 63, name
        if doc["kind"] == "RayCluster":
            assert len(name) <= 50, name  # KubeRay shortens longer names
        if doc["kind"] == "StatefulSet":
            assert len(name) <= 52, name  # room for the controller-revision-hash label
    cluster = one(docs, "RayCluster")["metadata"]["name"]
    address = settings(docs)["HPO_RAY_ADDRESS"]
    assert urlsplit(address).hostname == f"{cluster}-head-svc"


# --- Ray cluster ----------------------------------------------------------------------------


def test_worker_groups_follow_values(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    ray = values_of(case)["ray"]
    cluster = one(docs, "RayCluster")
    specs = {g["groupName"]: g for g in cluster["spec"]["workerGroupSpecs"]}
    assert list(specs) == [g["name"] for g in ray["workerGroups"]]
    for group in ray["workerGroups"]:
        spec = specs[group["name"]]
        for key in ("replicas", "minReplicas", "maxReplicas"):
            assert spec[key] == group[key], (group["name"], key)
    assert cluster["spec"]["enableInTreeAutoscaling"] is ray["autoscaling"]["enabled"]
    assert cluster["spec"]["rayVersion"] == ray["version"]
    # An autoscaling cluster grows on demand: the service must not refuse bigger studies.
    validate = settings(docs).get("HPO_VALIDATE_CAPACITY")
    assert validate == ("false" if ray["autoscaling"]["enabled"] else None)


def test_gpu_limits_only_on_gpu_groups(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    ray = values_of(case)["ray"]
    groups = {g["name"]: g for g in ray["workerGroups"]}
    gpu_tolerations = ray["gpuTolerations"]
    for doc in docs:
        for where, _meta, spec in pod_specs(doc):
            group = (
                groups.get(where.removeprefix("worker:")) if where.startswith("worker:") else None
            )
            is_gpu = group is not None and group.get("type") == "gpu"
            tolerations = spec.get("tolerations", [])
            for container in spec["containers"]:
                limits = container.get("resources", {}).get("limits", {})
                requests = container.get("resources", {}).get("requests", {})
                assert "nvidia.com/gpu" not in requests, where
                if group is not None and is_gpu:
                    assert limits["nvidia.com/gpu"] == group["gpus"], where
                    assert all(t in tolerations for t in gpu_tolerations), where
                else:
                    assert "nvidia.com/gpu" not in limits, (doc["kind"], where)
                    assert not any(t in tolerations for t in gpu_tolerations), where


def test_gpu_case_has_gpu_workers_and_autoscaling(helm: Helm) -> None:
    from tests.deploy.chart import CASES

    gpu_case = CASES["gpu-autoscaling"]
    docs = helm.template(gpu_case)
    cluster = one(docs, "RayCluster")
    assert cluster["spec"]["enableInTreeAutoscaling"] is True
    assert cluster["spec"]["autoscalerOptions"]["idleTimeoutSeconds"] == 120
    gpu_groups = [
        g
        for g in cluster["spec"]["workerGroupSpecs"]
        if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]
    ]
    assert [g["groupName"] for g in gpu_groups] == ["gpu-h200"]
    assert gpu_groups[0]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0-gpu")


def test_ray_dashboard_is_exposed_and_linked(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    dashboard = one(docs, "Service", "ray-dashboard")
    assert dashboard["spec"]["ports"][0]["targetPort"] == 8265
    values = values_of(case)["ray"]["dashboard"]
    url = settings(docs)["HPO_RAY_DASHBOARD_URL"]
    ingresses = {
        i["metadata"]["labels"]["app.kubernetes.io/component"]: i for i in by_kind(docs, "Ingress")
    }
    if values["ingress"]["enabled"]:
        rule = ingresses["ray-dashboard"]["spec"]["rules"][0]
        assert urlsplit(url).hostname == rule["host"] == values["ingress"]["host"]
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": dashboard["metadata"]["name"], "port": {"name": "dashboard"}}
    else:
        assert "ray-dashboard" not in ingresses
        assert url == (values["url"] or "http://127.0.0.1:8265")


def test_api_ingress(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    values = values_of(case)["service"]["ingress"]
    ingresses = [
        i
        for i in by_kind(docs, "Ingress")
        if i["metadata"]["labels"]["app.kubernetes.io/component"] == "api"
    ]
    if not values["enabled"]:
        assert not ingresses
        return
    (ingress,) = ingresses
    rule = ingress["spec"]["rules"][0]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {
        "name": one(docs, "Service", "api")["metadata"]["name"],
        "port": {"name": "http"},
    }
    scheme = "https" if values["tls"]["enabled"] else "http"
    assert settings(docs)["HPO_PUBLIC_URL"] == f"{scheme}://{values['host']}"
    if values["tls"]["enabled"]:
        assert ingress["spec"]["tls"][0]["hosts"] == [values["host"]]


def test_helm_test_hook_calls_readyz(helm: Helm, case: Path | None) -> None:
    docs = rendered(helm, case)
    (pod,) = by_kind(docs, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = " ".join(pod["spec"]["containers"][0]["command"])
    service = one(docs, "Service", "api")
    port = service["spec"]["ports"][0]["port"]
    assert f"http://{service['metadata']['name']}:{port}/readyz" in script
    assert pod["spec"]["restartPolicy"] == "Never"
