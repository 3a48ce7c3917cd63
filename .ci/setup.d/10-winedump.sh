# winedump (oracle for DBG files and PDB 2.0) comes from Debian's wine64-tools. It runs
# from the unpacked package, so we unpack it instead of installing Wine.
if ! command -v winedump >/dev/null 2>&1; then
    winedump_tmp=$(mktemp -d)
    (cd "$winedump_tmp" && apt-get download -qq wine64-tools >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get download -qq wine64-tools; })
    dpkg -x "$winedump_tmp"/wine64-tools_*.deb /opt/wine64-tools
    ln -sf /opt/wine64-tools/usr/lib/wine/winedump /usr/local/bin/winedump
    rm -rf "$winedump_tmp"
fi
winedump_usage=$(winedump 2>&1 || true)
case "$winedump_usage" in *"file name"*) ;; *) echo "winedump does not run" >&2; exit 1 ;; esac
