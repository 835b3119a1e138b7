package cloudlab.images_test

import data.cloudlab.images
import data.fixtures

with_image(image) := fixtures.deployment_with(object.union(fixtures.container, {"image": image}))

test_exact_versions_pass if {
	every image in ["ghcr.io/cloudlab/web:1.2.3", "apache/kafka:4.1.0", "registry:5000/x/y:v0.4.1", "x/y@sha256:0123456789abcdef"] {
		count(images.deny) == 0 with input as fixtures.cluster([with_image(image)])
	}
}

test_latest_is_denied if {
	bad := with_image("ghcr.io/cloudlab/web:latest")
	images.deny == {fixtures.finding(bad, `container "app" image "ghcr.io/cloudlab/web:latest" is not pinned to an exact version: use a tag like 1.2.3 (or a digest)`)} with input as fixtures.cluster([bad])
}

test_floating_major_and_missing_tag_are_denied if {
	every image in ["redis:7", "redis:7.2", "redis", "registry:5000/redis"] {
		count(images.deny) == 1 with input as fixtures.cluster([with_image(image)])
	}
}

test_bitnami_is_denied if {
	bad := with_image("docker.io/bitnami/postgresql:17.6.0")
	images.deny == {fixtures.finding(bad, `container "app" image "docker.io/bitnami/postgresql:17.6.0" comes from the Bitnami catalogue: use the upstream project's image`)} with input as fixtures.cluster([bad])
}

test_two_part_release_needs_a_reviewed_exception if {
	pg := with_image("postgres:17.6-alpine3.22")
	count(images.deny) == 1 with input as fixtures.cluster([pg]) with data.exceptions as []
	exc := [{"policy": "images", "image": "postgres", "reason": "test"}]
	count(images.deny) == 0 with input as fixtures.cluster([pg]) with data.exceptions as exc
	count(images.deny) == 1 with input as fixtures.cluster([with_image("redis:7.2")]) with data.exceptions as exc
}
