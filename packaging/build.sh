#!/usr/bin/env bash
# Builds the lvs-node packages of one architecture:
#
#   packaging/build.sh ARCH OUTDIR [FORMAT...]     (FORMAT: deb, rpm; default both)
#
# It cross-compiles the static binary for ARCH (a Go architecture: amd64,
# arm64), generates the manual pages and completion files from the command
# tree (packaging/gen), and packs them with nfpm (packaging/nfpm.yaml),
# pinned like the other build tools. The package version is the first entry
# of packaging/changelog.yml unless PKG_VERSION/PKG_RELEASE are set; the
# binary reports VERSION (git describe by default).
set -euo pipefail

if [ $# -lt 2 ]; then
	echo "usage: $0 ARCH OUTDIR [deb|rpm ...]" >&2
	exit 2
fi
arch=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
shift 2
formats=("$@")
[ ${#formats[@]} -gt 0 ] || formats=(deb rpm)

cd "$(dirname "$0")/.."
GO=${GO:-go}
NFPM=${NFPM:-github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}
LDFLAGS=${LDFLAGS:-"-s -w -X github.com/lvs-node/lvs-node/cmd/lvs-node/cli.version=$VERSION -X github.com/lvs-node/lvs-node/cmd/lvs-node/cli.commit=$COMMIT"}
top=$(sed -n 's/^- semver: *//p' packaging/changelog.yml | head -n 1)
export PKG_VERSION=${PKG_VERSION:-${top%-*}}
export PKG_RELEASE=${PKG_RELEASE:-${top##*-}}
export PKG_MAINTAINER=${PKG_MAINTAINER:-"lvs-node maintainers <maintainers@lvs-node.invalid>"}
# Dates in the packages and manual pages: the last commit's, so that a
# rebuild of the same commit gives the same files.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
export STAGE ARCH=$arch
CGO_ENABLED=0 GOOS=linux GOARCH=$arch $GO build -trimpath -ldflags "$LDFLAGS" -o "$STAGE/lvs-node" ./cmd/lvs-node
$GO run ./packaging/gen -out "$STAGE" -version "$PKG_VERSION"
for f in "${formats[@]}"; do
	$GO run "$NFPM" package --config packaging/nfpm.yaml --packager "$f" --target "$out/"
done
