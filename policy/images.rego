# Every image is pinned to an exact version (X.Y.Z, optionally with a suffix such as -alpine,
# or a digest): `latest` and floating tags (`16`, `7.2`) change under a running cluster and make
# a rollback impossible. No image comes from the Bitnami catalogue, whose free images moved in
# 2025 and broke every default install that pulled them.
package cloudlab.images

import data.lib

exact_tag := `^v?[0-9]+\.[0-9]+\.[0-9]+([-.+_][0-9A-Za-z._-]+)?$`

deny contains lib.finding(item, msg) if {
	some item in lib.workloads
	some x in lib.containers(lib.pod_spec(item.obj))
	regex.match(`(^|/)bitnami(legacy|charts)?/`, x.c.image)
	msg := sprintf("container %q image %q comes from the Bitnami catalogue: use the upstream project's image", [x.c.name, x.c.image])
}

deny contains lib.finding(item, msg) if {
	some item in lib.workloads
	some x in lib.containers(lib.pod_spec(item.obj))
	not contains(x.c.image, "@sha256:")
	not regex.match(exact_tag, tag(x.c.image))
	not two_part_release(x.c.image)
	msg := sprintf("container %q image %q is not pinned to an exact version: use a tag like 1.2.3 (or a digest)", [x.c.name, x.c.image])
}

# two_part_release(image) holds for a MAJOR.MINOR tag of an image whose project numbers its
# releases that way (PostgreSQL: 17.6 is one exact release), when policy/exceptions.yaml says so.
two_part_release(image) if {
	some e in data.exceptions
	e.policy == "images"
	e.image == repository(image)
	regex.match(`^[0-9]+\.[0-9]+(-[0-9A-Za-z._-]+)?$`, tag(image))
}

# repository(image) is the image without its tag.
repository(image) := trim_suffix(image, concat("", [":", tag(image)]))

# tag(image) is what follows the last ':' of the last path segment ("" when there is none).
tag(image) := t if {
	segments := split(image, "/")
	last := segments[count(segments) - 1]
	parts := split(last, ":")
	count(parts) == 2
	t := parts[1]
} else := ""
