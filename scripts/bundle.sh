#!/usr/bin/env bash
# `make bundle`: a self-contained Linux build of Engram, as
#   dist/engram/                                   the PyInstaller folder (onedir)
#   dist/engram-<version>-linux-x86_64.tar.gz      that folder, packed
#   dist/engram_<version>_amd64.deb                /opt/engram + /usr/bin/engram + desktop files
# The bundle carries Python, Qt, torch (CPU), Chroma and every model set-up installs (the
# embedded SmolLM2 and MiniLM, and the Qwen models in app.paths.models_dir()); tesseract is a
# system package the .deb depends on. Needs the set-up done (scripts/setup.sh) and dpkg-deb.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
PY=$VENV/bin/python
BUILD=${ENGRAM_BUNDLE_BUILD:-build/bundle}
DIST=${ENGRAM_BUNDLE_DIST:-dist}
start=$(date +%s)

# --pack-only: pack an existing $DIST/engram again (the PyInstaller step is the slow one)
if [ "${1-}" != "--pack-only" ]; then
    bash scripts/setup.sh
    "$PY" -m pip -q --disable-pip-version-check install -e ".[bundle]"
fi
version=$("$PY" -c "from app.version import engram_version; print(engram_version())")
models=$("$PY" -c "from app.paths import models_dir; print(models_dir())")
if [ "${1-}" != "--pack-only" ]; then
    echo "bundle: engram $version, models from $models"
    rm -rf "$DIST/engram" "$BUILD/pyinstaller"
    ENGRAM_BUNDLE_MODELS="$models" "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
        --distpath "$DIST" --workpath "$BUILD/pyinstaller" packaging/pyinstaller/engram.spec
fi
[ -x "$DIST/engram/engram" ] || { echo "bundle: no $DIST/engram/engram to pack" >&2; exit 1; }

echo "bundle: packing the tarball"
tarball="$DIST/engram-$version-linux-x86_64.tar.gz"
tar -C "$DIST" -cf - engram | gzip -1 > "$tarball"

echo "bundle: building the .deb"
root="$BUILD/deb"
rm -rf "$root"
mkdir -p "$root/DEBIAN" "$root/opt" "$root/usr/bin" "$root/usr/share/applications" \
    "$root/usr/share/metainfo" "$root/usr/share/icons/hicolor/scalable/apps"
cp -a "$DIST/engram" "$root/opt/engram"
ln -s /opt/engram/engram "$root/usr/bin/engram"
cp packaging/engram.desktop "$root/usr/share/applications/io.engram.Engram.desktop"
cp packaging/io.engram.Engram.metainfo.xml "$root/usr/share/metainfo/"
cp packaging/engram.svg "$root/usr/share/icons/hicolor/scalable/apps/engram.svg"
size_kb=$(du -sk "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size_kb/" packaging/deb-control.in > "$root/DEBIAN/control"
deb="$DIST/engram_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zgzip -z1 --build "$root" "$deb" >/dev/null

end=$(date +%s)
"$PY" - "$DIST/engram" "$tarball" "$deb" $((end - start)) <<'PYEOF'
import json, os, sys
folder, tarball, deb, seconds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs
           if not os.path.islink(os.path.join(d, f)))
print(json.dumps({"folder_mb": round(size / 2**20), "tarball": tarball,
                  "tarball_mb": round(os.path.getsize(tarball) / 2**20), "deb": deb,
                  "deb_mb": round(os.path.getsize(deb) / 2**20), "build_s": seconds}))
PYEOF
