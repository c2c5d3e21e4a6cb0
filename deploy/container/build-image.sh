#!/bin/sh
# Build the serving image with podman, once per content: the tag is a hash of what goes into it,
# so a second run with nothing changed only prints the tag. Last line of output: the image's name.
#   PYTHON=.venv/bin/python deploy/container/build-image.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache="$repo/.edgecloud/image"
python=${PYTHON:-python3}
export CONTAINERS_CONF="$here/containers.conf"
podman="podman --runtime /usr/sbin/runc"
mkdir -p "$cache"

hash=$(cd "$repo" && { cat deploy/container/Containerfile deploy/container/requirements.txt;
        find mms_handlers registry aggregation export edgecloud -name '*.py' -o -name '*.xml' -o -name '*.json' | sort | xargs cat; } | sha256sum | cut -c1-16)
image="localhost/edgecloud-serving:$hash"
if $podman image exists "$image"; then
  echo "$image (cached)" >&2; echo "$image"; exit 0
fi

base=localhost/edgecloud-base:bookworm
if ! $podman image exists "$base"; then
  if [ ! -f "$cache/base.tar" ] || [ ! -s "$cache/base.tar" ]; then
    echo "making the Debian bookworm base with mmdebstrap" >&2
    rm -rf "$cache/base.tar" "$cache/base.tar.part"
    # --format=tar: mmdebstrap guesses the format from the name, and ".part" would make it a directory.
    mmdebstrap --variant=apt --format=tar --include=python3,python3-venv,ca-certificates,openjdk-17-jre-headless,tini \
      bookworm "$cache/base.tar.part" >&2
    mv "$cache/base.tar.part" "$cache/base.tar"
  fi
  $podman import "$cache/base.tar" "$base" >&2
fi

context="$cache/context"
rm -rf "$context"; mkdir -p "$context"
cp "$here/Containerfile" "$here/requirements.txt" "$context/"
(cd "$repo" && find mms_handlers registry aggregation export edgecloud \( -name '*.py' -o -name '*.xml' -o -name '*.json' \) \
  -not -path '*/__pycache__/*' -exec cp --parents {} "$context/" \;)
"$python" -m pip download -q -d "$cache/wheels" -r "$here/requirements.txt" >&2
cp -r "$cache/wheels" "$context/wheels"
$podman build --network host -t "$image" -f "$context/Containerfile" "$context" >&2
$podman tag "$image" localhost/edgecloud-serving:latest
echo "$image"
