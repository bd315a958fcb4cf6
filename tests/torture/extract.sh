#!/usr/bin/env bash
# Recover the RFC 4475 torture messages from the RFC's own Appendix A archive
# (rfc4475-appendix-a.b64: the base64 lines of A.1, page furniture removed)
# and check that every committed tests/torture/*.dat is bit-identical to its
# archive member.
#
#   tests/torture/extract.sh            # verify only (exit 1 on any mismatch)
#   tests/torture/extract.sh --write    # (re)write the .dat files from the archive
#
# The archive's gzip CRC32 and tar header checksums, plus SHA256SUMS, are what
# make these fixtures trustworthy: a retyped message would silently lose the
# NULs, raw CRs and UTF-8 octets several tests depend on.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
write=0
case "${1:-}" in
    "") ;;
    --write) write=1 ;;
    *) echo "usage: ${0##*/} [--write]" >&2; exit 64 ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

base64 -d "$here/rfc4475-appendix-a.b64" > "$work/archive.tgz"
gzip -t "$work/archive.tgz"
mkdir "$work/out"
tar -xzf "$work/archive.tgz" -C "$work/out"

# test.dat is in the archive but no section of RFC 4475 describes it, so it
# has no expectation and is not part of the corpus.
rm -f "$work/out/test.dat"

status=0
for member in "$work"/out/*.dat; do
    name="$(basename "$member")"
    if [[ $write -eq 1 ]]; then
        cp "$member" "$here/$name"
    elif ! cmp -s "$member" "$here/$name"; then
        echo "MISMATCH: $name differs from the RFC 4475 archive" >&2
        status=1
    fi
done

for committed in "$here"/*.dat; do
    if [[ ! -e "$work/out/$(basename "$committed")" ]]; then
        echo "EXTRA: $(basename "$committed") is not an RFC 4475 archive member" >&2
        status=1
    fi
done

(cd "$here" && sha256sum --quiet -c SHA256SUMS) || status=1

if [[ $status -eq 0 ]]; then
    echo "rfc4475 corpus: $(ls "$work"/out/*.dat | wc -l) messages match the RFC archive"
fi
exit $status
