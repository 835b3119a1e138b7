#!/bin/bash
# Stub of the image's entrypoint (bash, as the image's: sh would drop the dotted names from
# the environment): records the settings passed as environment.
echo "docker-entrypoint.sh $*" >> "$STUB_LOG"
env | grep -E '^(cluster|discovery|node|path)\.' | sort | sed 's/^/  env /' >> "$STUB_LOG"
